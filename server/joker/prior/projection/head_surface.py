"""The neutral head of a HeadModel as the texture baker sees it: its UVs, which faces are
mouth interior (dark), and where the photo is believed (the face region)."""

from __future__ import annotations

import numpy as np

from joker_core.head_model import HeadModel

from .texture import Surface


CHIN_MARGIN = 0.0  # m: how far below the chin the photo is still believed


def surface_from_head(head: HeadModel, neutral_vertices: np.ndarray | None = None) -> Surface:
    vertices = np.asarray(head.v_template if neutral_vertices is None else neutral_vertices,
                          dtype=np.float64)
    return Surface(vertices, np.asarray(head.faces), head.uv_coords, head.uv_faces,
                   mouth_interior_faces(head), trusted_vertices(head, vertices))


def trusted_vertices(head: HeadModel, vertices: np.ndarray) -> np.ndarray | None:
    """Where photo colours are believed: the face region, and nothing below the chin, where
    photos show collars and the shadow under the jaw rather than the neck's skin."""
    trusted = None if head.face_region is None else head.face_region.copy()
    if "chin" in head.landmarks:
        above_chin = vertices[:, 1] >= vertices[head.landmarks["chin"], 1] - CHIN_MARGIN
        trusted = above_chin if trusted is None else trusted & above_chin
    return trusted


def mouth_interior_faces(head: HeadModel) -> np.ndarray | None:
    """F bool from the labels a head may carry: metadata["face_parts"] (name -> [first, end)
    face ranges) and metadata["mouth_interior_parts"] (the names that are mouth interior)."""
    ranges = head.metadata.get("face_parts", {})
    names = head.metadata.get("mouth_interior_parts", ())
    if not any(name in ranges for name in names):
        return None
    dark = np.zeros(len(head.faces), bool)
    for name in names:
        first, end = ranges.get(name, (0, 0))
        dark[first:end] = True
    return dark

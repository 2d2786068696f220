"""The neutral head of a HeadModel as the texture baker sees it: its UVs, which faces are
mouth interior (dark), and where the photo is believed (the face region, when labelled)."""

from __future__ import annotations

import numpy as np

from joker_core.head_model import HeadModel

from .texture import Surface


def surface_from_head(head: HeadModel, neutral_vertices: np.ndarray | None = None) -> Surface:
    vertices = np.asarray(head.v_template if neutral_vertices is None else neutral_vertices,
                          dtype=np.float64)
    return Surface(vertices, np.asarray(head.faces), head.uv_coords, head.uv_faces,
                   mouth_interior_faces(head), head.face_region)


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

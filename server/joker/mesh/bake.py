"""Texture baking: every texel inside a chart takes the colour field at its surface point.

Triangles are rasterised in UV space all at once (numpy, no per-triangle loop): each
triangle's texel bounding box is enumerated, texel centres are tested with barycentric
coordinates, and the hits give the 3D point to colour. Texels outside every chart are
then filled from the nearest chart texel, so bilinear lookups at seams and in mip levels
never blend in background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..render.texels import fill_empty_texels
from .fields import ColorField, evaluate
from .unwrap import UVMesh

# Bound on (triangle, texel) candidates held at once: ~100 MB of temporaries.
CANDIDATES_PER_BATCH = 1 << 22
EDGE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class TexelHits:
    """The texels whose centre lies in a triangle, one row per texel."""

    texel: np.ndarray        # N flat texel index, row-major with row 0 at the image top
    face: np.ndarray         # N face index
    barycentric: np.ndarray  # N x 3 weights of the face's corners


def uv_to_pixel(uvs: np.ndarray, size: int) -> np.ndarray:
    """UVs (origin bottom-left) -> continuous pixel coordinates (x right, y down, centres at +0.5)."""
    return np.stack([uvs[:, 0] * size, (1.0 - uvs[:, 1]) * size], axis=1)


def _texel_boxes(corners: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """First texel (x, y) and texel count per axis of the texel centres around each triangle."""
    low = np.clip(np.ceil(corners.min(axis=1) - 0.5), 0, size - 1).astype(np.int64)
    high = np.clip(np.floor(corners.max(axis=1) - 0.5), 0, size - 1).astype(np.int64)
    return low, np.maximum(high - low + 1, 0)


def _enumerate_candidates(low: np.ndarray, extent: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(face, x, y) for every texel in every face's box; face indexes the given boxes."""
    counts = extent[:, 0] * extent[:, 1]
    face = np.repeat(np.arange(len(low)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    width = extent[face, 0]
    return face, low[face, 0] + local % width, low[face, 1] + local // width


def _barycentric(corners: np.ndarray, points: np.ndarray) -> np.ndarray:
    a, b, c = corners[:, 0], corners[:, 1], corners[:, 2]
    ab, ac, ap = b - a, c - a, points - a
    area = ab[:, 0] * ac[:, 1] - ab[:, 1] * ac[:, 0]
    safe = np.where(np.abs(area) > 0, area, np.inf)  # degenerate UV triangles hit nothing
    w1 = (ap[:, 0] * ac[:, 1] - ap[:, 1] * ac[:, 0]) / safe
    w2 = (ab[:, 0] * ap[:, 1] - ab[:, 1] * ap[:, 0]) / safe
    return np.stack([1.0 - w1 - w2, w1, w2], axis=1)


def rasterize_uv(uvs: np.ndarray, faces: np.ndarray, size: int) -> TexelHits:
    """Which face (and where in it) each texel centre of a size^2 texture falls in."""
    corners = uv_to_pixel(uvs, size)[faces]
    low, extent = _texel_boxes(corners, size)
    batch_of_face = np.cumsum(extent[:, 0] * extent[:, 1]) // CANDIDATES_PER_BATCH
    hits = []
    for batch in np.split(np.arange(len(faces)), np.flatnonzero(np.diff(batch_of_face)) + 1):
        face, x, y = _enumerate_candidates(low[batch], extent[batch])
        weights = _barycentric(corners[batch][face], np.stack([x + 0.5, y + 0.5], axis=1))
        inside = (weights >= -EDGE_TOLERANCE).all(axis=1)
        hits.append((y[inside] * size + x[inside], batch[face[inside]], weights[inside]))
    texel, face, weights = (np.concatenate(parts) for parts in zip(*hits))
    # A texel centre on a shared edge hits both faces: keep the first, deterministically.
    texel, first = np.unique(texel, return_index=True)
    return TexelHits(texel=texel, face=face[first], barycentric=weights[first])


def bake_texture(mesh: UVMesh, color: ColorField, size: int, *, chunk_size: int = 1 << 18,
                 device: str | torch.device = "cpu") -> np.ndarray:
    """size x size x 3 uint8 base-colour texture of `color` over the mesh's UV atlas."""
    hits = rasterize_uv(mesh.uvs, mesh.faces, size)
    corners = mesh.vertices[mesh.faces[hits.face]]
    points = np.einsum("nk,nkd->nd", hits.barycentric, corners).astype(np.float32)
    colors = evaluate(color, points, what="color", channels=3, chunk_size=chunk_size, device=device)
    image = np.zeros((size * size, 3), np.float32)
    image[hits.texel] = np.clip(colors, 0.0, 1.0)
    covered = np.zeros(size * size, bool)
    covered[hits.texel] = True
    image = fill_empty_texels(image.reshape(size, size, 3), covered.reshape(size, size))
    return np.rint(image * 255.0).astype(np.uint8)

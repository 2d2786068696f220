"""Texture baking: every texel inside a chart takes the colour field at its surface point.

Triangles are rasterised in UV space all at once (numpy, no per-triangle loop): each
triangle's texel bounding box is enumerated, texel centres are tested with barycentric
coordinates, and the hits give the 3D point to colour. The ring of texels just outside a
chart (within `GUTTER` texels) takes the colour at the point its nearest chart triangle
reaches when extended into it: a bilinear lookup on a chart's edge blends those texels,
and both sides of a UV seam then read the colour of the same surface point, so the seam
shows no line (docs/mesh.md, "Seams"). Texels farther out are filled from the nearest
chart texel, so mip levels never blend in background.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from ..render.texels import fill_empty_texels
from .fields import ColorField, evaluate
from .unwrap import UVMesh

# Bound on (triangle, texel) candidates held at once: ~100 MB of temporaries.
CANDIDATES_PER_BATCH = 1 << 22
EDGE_TOLERANCE = 1e-9
# Texels (Euclidean, in texel units) outside a chart that take its extended surface: a
# bilinear footprint reaches the 8 neighbours of an edge texel (sqrt 2 away); xatlas packs
# charts 2 texels apart, so the rings of two charts do not meet.
GUTTER = 1.5
MAX_GUTTER = 8.0  # farther out, an extended triangle no longer stands for the surface


@dataclass(frozen=True)
class TexelHits:
    """The texels whose centre lies in a triangle, one row per texel."""

    texel: np.ndarray        # N flat texel index, row-major with row 0 at the image top
    face: np.ndarray         # N face index
    barycentric: np.ndarray  # N x 3 weights of the face's corners; < 0 on the gutter ring (outside the face)

    def on_face(self) -> np.ndarray:
        """The barycentric weights clamped onto the face (gutter texels: a point on its edge)."""
        clamped = np.clip(self.barycentric, 0.0, None)
        return clamped / clamped.sum(axis=1, keepdims=True)


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


def rasterize_uv(uvs: np.ndarray, faces: np.ndarray, size: int, gutter: float = GUTTER) -> TexelHits:
    """Which face (and where in it) each texel centre of a size^2 texture falls in, and for
    the texels within `gutter` of a chart, its nearest face extended to them."""
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
    inside = TexelHits(texel=texel, face=face[first], barycentric=weights[first])
    return _with_gutter(inside, corners, size, gutter) if gutter > 0 else inside


def _with_gutter(inside: TexelHits, corners: np.ndarray, size: int, gutter: float) -> TexelHits:
    """`inside` and the uncovered texels within `gutter` of it, each on the face of its
    nearest covered texel, with that face's barycentric weights extrapolated to it."""
    covered = np.zeros(size * size, bool)
    covered[inside.texel] = True
    distance, nearest = ndimage.distance_transform_edt(~covered.reshape(size, size), return_indices=True)
    ring = np.flatnonzero((distance.ravel() > 0) & (distance.ravel() <= gutter))
    face_of = np.full(size * size, -1)
    face_of[inside.texel] = inside.face
    face = face_of[nearest[0].ravel()[ring] * size + nearest[1].ravel()[ring]]
    weights = _barycentric(corners[face], np.stack([ring % size + 0.5, ring // size + 0.5], axis=1))
    order = np.argsort(np.concatenate([inside.texel, ring]))
    return TexelHits(texel=np.concatenate([inside.texel, ring])[order],
                     face=np.concatenate([inside.face, face])[order],
                     barycentric=np.concatenate([inside.barycentric, weights])[order])


def bake_texture(mesh: UVMesh, color: ColorField, size: int, *, gutter: float = GUTTER,
                 chunk_size: int = 1 << 18, device: str | torch.device = "cpu") -> np.ndarray:
    """size x size x 3 uint8 base-colour texture of `color` over the mesh's UV atlas."""
    hits = rasterize_uv(mesh.uvs, mesh.faces, size, gutter)
    corners = mesh.vertices[mesh.faces[hits.face]]
    points = np.einsum("nk,nkd->nd", hits.barycentric, corners).astype(np.float32)
    colors = evaluate(color, points, what="color", channels=3, chunk_size=chunk_size, device=device)
    image = np.zeros((size * size, 3), np.float32)
    image[hits.texel] = np.clip(colors, 0.0, 1.0)
    covered = np.zeros(size * size, bool)
    covered[hits.texel] = True
    image = fill_empty_texels(image.reshape(size, size, 3), covered.reshape(size, size))
    return np.rint(image * 255.0).astype(np.uint8)

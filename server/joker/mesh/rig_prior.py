"""The posed rig as the mesh's geometric prior, within the field's own precision.

The field is trained toward the posed rig's depth and silhouettes (RigSupervision) and
learns its surface on a grid: where its surface lies within about one grid cell of the
rig's, the difference is the field's noise, not something the prior showed. Measured on
the projection prior, that noise (a mean 1 mm, 3 mm at the 95th percentile) is most of
the mesh's error against the views: it moves the outline by a fraction of a pixel, and the
outline pixels hold most of the squared error (docs/mesh.md, "The rig within tolerance").

So every surface point's offset from the rig is shrunk by the tolerance (a soft
threshold): an offset inside it vanishes, a larger one keeps all but the tolerance. A
head that truly leaves the rig (hair, a changed shape) keeps its shape, less one
tolerance, and nothing jumps: the shrink is continuous.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..render.normal_maps import vertex_normals
from .surface import Surface

MIN_AGREEMENT = 0.3  # cosine between a vertex's normal and a rig face's: a lip never takes the other lip's surface


@dataclass(frozen=True)
class RigSurface:
    """The posed rig (FLAME frame, metres) and the distance within which the field's
    surface is taken as the rig's."""

    vertices: np.ndarray  # N x 3
    faces: np.ndarray     # F x 3
    tolerance: float      # m; 0 leaves every surface where the field put it


def shrink(offsets: np.ndarray, tolerance: float) -> np.ndarray:
    """Each offset (N x 3) shortened by `tolerance`, to zero where it is shorter."""
    if tolerance <= 0:
        return offsets
    length = np.linalg.norm(offsets, axis=1, keepdims=True)
    return offsets * np.clip(1.0 - tolerance / np.maximum(length, 1e-12), 0.0, 1.0)


def onto_rig(vertices: np.ndarray, faces: np.ndarray, rig: RigSurface) -> np.ndarray:
    """A surface of its own (the marching-cubes mesh) drawn onto the rig's wherever it lies
    within the tolerance: each vertex's offset from its closest rig point, among the rig's
    faces that look its way, is shrunk. A vertex with no such face stays."""
    if rig.tolerance <= 0:
        return vertices
    normals = vertex_normals(torch.from_numpy(vertices), torch.from_numpy(np.asarray(faces, np.int64))).numpy()
    closest, distance = Surface(rig.vertices, rig.faces).closest(vertices, normals, MIN_AGREEMENT)
    found = np.isfinite(distance)[:, None]
    return np.where(found, closest + shrink(vertices - closest, rig.tolerance), vertices)

"""Closest points on a triangle mesh, optionally only on the faces that look a given way
(registration's targets; the rig as the mesh's prior)."""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def _closest_on_triangles(points: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Closest point on triangle (a, b, c) to each point (all ... x 3), Ericson's regions."""
    ab, ac, ap = b - a, c - a, points - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp, cp = points - b, points - c
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va, vb, vc = d3 * d6 - d5 * d4, d5 * d2 - d1 * d6, d1 * d4 - d3 * d2
    denominator = va + vb + vc
    safe = np.where(np.abs(denominator) > 1e-30, denominator, 1e-30)
    v, w = vb / safe, vc / safe
    result = a + ab * v[..., None] + ac * w[..., None]  # inside the face

    def edge(mask, start, direction, t):
        np.copyto(result, start + direction * np.clip(t, 0, 1)[..., None], where=mask[..., None])

    # Edges, then corners (corners last: they win where regions touch).
    edge((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0), b, c - b, (d4 - d3) / np.maximum((d4 - d3) + (d5 - d6), 1e-30))
    edge((vb <= 0) & (d2 >= 0) & (d6 <= 0), a, ac, d2 / np.maximum(d2 - d6, 1e-30))
    edge((vc <= 0) & (d1 >= 0) & (d3 <= 0), a, ab, d1 / np.maximum(d1 - d3, 1e-30))
    for mask, corner in (((d1 <= 0) & (d2 <= 0), a), ((d3 >= 0) & (d4 <= d3), b), ((d6 >= 0) & (d5 <= d6), c)):
        np.copyto(result, corner, where=mask[..., None])
    return result


class Surface:
    """A triangle mesh answering closest-point queries (optionally only on faces whose
    normal agrees with a given direction)."""

    def __init__(self, vertices: np.ndarray, faces: np.ndarray, candidates: int = 16):
        self.corners = np.asarray(vertices, np.float64)[np.asarray(faces)]
        normals = np.cross(self.corners[:, 1] - self.corners[:, 0], self.corners[:, 2] - self.corners[:, 0])
        self.normals = normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)
        self.tree = cKDTree(self.corners.mean(axis=1))
        self.candidates = min(candidates, len(faces))

    def closest(self, points: np.ndarray, directions: np.ndarray | None = None,
                min_agreement: float = -1.0) -> tuple[np.ndarray, np.ndarray]:
        """(closest points N x 3, distances N); inf where no candidate face agrees."""
        _, nearest = self.tree.query(points, k=self.candidates)
        nearest = nearest.reshape(len(points), -1)
        corners = self.corners[nearest]
        found = _closest_on_triangles(points[:, None], corners[..., 0, :], corners[..., 1, :], corners[..., 2, :])
        distance = np.linalg.norm(found - points[:, None], axis=-1)
        if directions is not None:
            agree = (self.normals[nearest] * directions[:, None]).sum(-1) >= min_agreement
            distance = np.where(agree, distance, np.inf)
        best = distance.argmin(axis=1)
        rows = np.arange(len(points))
        return found[rows, best], distance[rows, best]

"""A synthetic head for the projection tests: an ellipsoid, symmetric about x = 0, with a
latitude-longitude UV layout whose seam runs down the back (welded in 3D, split in UV),
and eye and mouth points on its front."""

from __future__ import annotations

import numpy as np

from joker.prior.projection.texture import Surface

RADII = np.array([0.075, 0.105, 0.095])  # m: a head-sized ellipsoid, face toward +z


def ellipsoid_surface(rings: int = 32, segments: int = 64) -> Surface:
    theta = np.linspace(0.0, np.pi, rings + 1)        # from the top (+y) down
    phi = np.linspace(-np.pi, np.pi, segments + 1)    # the last column is the seam again
    t, p = np.meshgrid(theta, phi, indexing="ij")
    uv = np.stack([(p + np.pi) / (2 * np.pi), 1.0 - t / np.pi], -1).reshape(-1, 2)
    grid = np.arange((rings + 1) * (segments + 1)).reshape(rings + 1, segments + 1)
    # 3D vertices: one per ring and segment, one per pole.
    welded = np.empty_like(grid)
    welded[0], welded[-1] = 0, 1 + (rings - 1) * segments
    welded[1:-1, :segments] = 1 + np.arange((rings - 1) * segments).reshape(rings - 1, segments)
    welded[1:-1, segments] = welded[1:-1, 0]
    ring_t, ring_p = t[1:-1, :segments].ravel(), p[1:-1, :segments].ravel()
    unit = np.concatenate([[[0.0, 1.0, 0.0]],
                           np.stack([np.sin(ring_t) * np.sin(ring_p), np.cos(ring_t),
                                     np.sin(ring_t) * np.cos(ring_p)], -1),
                           [[0.0, -1.0, 0.0]]])
    a, b = grid[:-1, :-1].ravel(), grid[:-1, 1:].ravel()
    c, d = grid[1:, :-1].ravel(), grid[1:, 1:].ravel()
    uv_faces = np.concatenate([np.stack([a, c, b], 1), np.stack([b, c, d], 1)])
    faces = welded.ravel()[uv_faces]
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    return Surface(unit * RADII, faces[keep], uv, uv_faces[keep])


def on_front(x: float, y: float) -> np.ndarray:
    """The ellipsoid's front point above (x, y)."""
    z = RADII[2] * np.sqrt(1.0 - (x / RADII[0]) ** 2 - (y / RADII[1]) ** 2)
    return np.array([x, y, z])


def ellipsoid_landmarks() -> dict[str, np.ndarray]:
    return {"eyes": np.stack([on_front(-0.031, 0.02), on_front(0.031, 0.02)]),
            "mouth": on_front(0.0, -0.045)}

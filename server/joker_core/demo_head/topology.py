"""Mesh topology of the demo head's parts: latitude-longitude grids closed by two poles,
and the pouch that closes the lip slit from inside.

The same functions build the mesh faces and the UV faces: they take index tables, and only
the tables differ (the mesh wraps around at the back and shares one vertex per pole, the
UV layout has a seam column and one pole coordinate per column).

Triangles are wound so their normals point out of the closed part (counter-clockwise seen
from outside): for a grid point P(polar, azimuth) the outward normal is dP/dpolar x dP/dazimuth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def unit_directions(polar: np.ndarray, azimuth: np.ndarray) -> np.ndarray:
    """Polar angles (from +y) and azimuths (from +z toward +x) -> unit vectors."""
    polar, azimuth = np.broadcast_arrays(polar, azimuth)
    s = np.sin(polar)
    return np.stack([s * np.sin(azimuth), np.cos(polar), s * np.cos(azimuth)], axis=-1)


def grid_faces(rings: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> np.ndarray:
    """Faces of a pole-to-pole grid.

    rings: rows x (cols + 1) indices, the last column being the one after the first (the
    same vertex again on a closed mesh, a seam copy in UV space); top, bottom: cols pole
    indices, one per column's fan triangle.
    """
    a, c = rings[:, :-1], rings[:, 1:]
    faces = [np.stack([top, a[0], c[0]], axis=1)]
    faces += [np.stack([a[:-1], a[1:], c[:-1]], -1).reshape(-1, 3),
              np.stack([c[:-1], a[1:], c[1:]], -1).reshape(-1, 3)]
    faces.append(np.stack([a[-1], bottom, c[-1]], axis=1))
    return np.concatenate(faces)


def closed_grid_faces(n_rows: int, n_cols: int, offset: int = 0) -> np.ndarray:
    """Mesh faces of a closed grid: vertex 0 the top pole, n_rows rings of n_cols, the bottom pole."""
    cols = np.arange(n_cols + 1) % n_cols
    rings = 1 + np.arange(n_rows)[:, None] * n_cols + cols[None, :]
    poles = np.zeros(n_cols, int), np.full(n_cols, 1 + n_rows * n_cols)
    return grid_faces(rings, *poles) + offset


def grid_uv(n_rows: int, n_cols: int, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """UV coordinates and faces of a closed grid unrolled into box (u0, v0, u1, v1); the top pole at v1."""
    u0, v0, u1, v1 = box
    u = np.linspace(u0, u1, n_cols + 1)
    v = v1 - (v1 - v0) * np.arange(1, n_rows + 1) / (n_rows + 1)
    ring_uv = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)
    centres = (u[:-1] + u[1:]) / 2
    top_uv = np.stack([centres, np.full(n_cols, v1)], axis=1)
    bottom_uv = np.stack([centres, np.full(n_cols, v0)], axis=1)
    rings = np.arange(n_rows * (n_cols + 1)).reshape(n_rows, n_cols + 1)
    first_pole = rings.size
    faces = grid_faces(rings, first_pole + np.arange(n_cols), first_pole + n_cols + np.arange(n_cols))
    return np.concatenate([ring_uv, top_uv, bottom_uv]), faces


def latlong_sphere(centre: np.ndarray, radii, n_rows: int, n_cols: int) -> np.ndarray:
    """Vertices of a closed ellipsoid grid with poles on the y axis, the seam at the back."""
    polar = np.pi * np.arange(1, n_rows + 1) / (n_rows + 1)
    azimuth = -np.pi + 2 * np.pi * np.arange(n_cols) / n_cols
    ring = unit_directions(polar[:, None], azimuth[None, :]).reshape(-1, 3)
    unit = np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]])
    return np.asarray(centre) + unit * np.asarray(radii)


def boundary_loop(faces: np.ndarray, rim: np.ndarray) -> np.ndarray:
    """The one hole of a mesh, whose vertices are all in `rim`, as a vertex loop in the
    direction its faces traverse it."""
    faces = faces[np.isin(faces, rim).any(axis=1)]
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    directed = set(map(tuple, edges.tolist()))
    on_rim = set(rim.tolist())
    following = {a: b for a, b in directed if (b, a) not in directed and a in on_rim and b in on_rim}
    start = min(following)
    loop = [start]
    while following[loop[-1]] != start:
        loop.append(following[loop[-1]])
    if len(loop) != len(following):
        raise ValueError("the skin has more than one hole")
    return np.array(loop)


def pouch_faces(rings: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """Faces of a tube closed at its far end.

    rings: (n_rings + 1) x (n + 1) indices, ring 0 the hole's loop in the direction the
    surrounding faces traverse it, the last column the first one again (or its seam copy);
    cap: n indices of the closing point, one per fan triangle.
    """
    a, b = rings[:, :-1], rings[:, 1:]            # a -> b runs along the loop
    strip = np.concatenate([np.stack([b[:-1], a[:-1], a[1:]], -1).reshape(-1, 3),
                            np.stack([b[:-1], a[1:], b[1:]], -1).reshape(-1, 3)])
    fan = np.stack([b[-1], a[-1], cap], axis=1)
    return np.concatenate([strip, fan])


@dataclass(frozen=True)
class Pouch:
    faces: np.ndarray   # strip and cap faces, indexing the whole mesh
    rings: np.ndarray   # n_rings x len(loop) vertex ids of the new rings
    cap: int            # vertex id of the cap centre


def pouch_behind(loop: np.ndarray, n_rings: int, first_vertex: int) -> Pouch:
    """A pouch of n_rings new rings and a cap vertex, numbered from first_vertex, sealing `loop`."""
    n = len(loop)
    rings = first_vertex + np.arange(n_rings * n).reshape(n_rings, n)
    every = np.vstack([loop[None, :], rings])
    cap = first_vertex + n_rings * n
    faces = pouch_faces(np.concatenate([every, every[:, :1]], axis=1), np.full(n, cap))
    return Pouch(faces=faces, rings=rings, cap=cap)


def pouch_uv(n_loop: int, n_rings: int, box: tuple[float, float, float, float]) -> tuple[np.ndarray, np.ndarray]:
    """UV coordinates and faces of a pouch unrolled into box: the lips at v1, the cap at v0."""
    u0, v0, u1, v1 = box
    u = np.linspace(u0, u1, n_loop + 1)
    v = v1 - (v1 - v0) * np.arange(n_rings + 1) / (n_rings + 1)
    coords = np.stack(np.meshgrid(u, v), axis=-1).reshape(-1, 2)
    rings = np.arange(coords.shape[0]).reshape(n_rings + 1, n_loop + 1)
    cap_uv = np.stack([(u[:-1] + u[1:]) / 2, np.full(n_loop, v0)], axis=1)
    faces = pouch_faces(rings, len(coords) + np.arange(n_loop))
    return np.concatenate([coords, cap_uv]), faces

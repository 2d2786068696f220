"""A head's UV charts: few and large, with their borders where nobody looks.

The surface is cut into regions by the direction from the head's centre (FLAME frame: +y
up, the face looks along +z): the face as one region, bounded behind the ears, under the
jaw and on the crown; then the back of the head, the crown, and the neck's front and back. Each connected piece of a region is flattened with
least-squares conformal maps (LSCM, Levy et al. 2002: angles kept); the few faces where
it folds over (sharp creases: mouth corners, ear rims) are left to xatlas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.sparse.linalg import spsolve

# Region borders, degrees. Azimuth 0 is the face's direction, +-90 the ears; elevation 0
# the centre's height. The face region reaches behind the ears, so its border passes
# behind them, under the jaw line and over the crown.
FACE_AZIMUTH = 110.0
CROWN_ELEVATION = 55.0
NECK_ELEVATION = -40.0
NECK_SIDE_AZIMUTH = 90.0  # the neck, a tube, is cut down its sides into front and back
UNTANGLE_ROUNDS = 60
FLIP_TOLERANCE = 1e-3  # of the mean UV triangle area


@dataclass(frozen=True)
class Chart:
    faces: np.ndarray  # F: indices into the mesh's faces
    uvs: np.ndarray    # F x 3 x 2: each corner's UV (any scale; the packer sizes charts by surface area)


def regions(vertices: np.ndarray, faces: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Region label of every face: 0 face, 1 crown, 2 back, 3 neck front, 4 neck back."""
    offset = vertices[faces].mean(axis=1) - centre
    azimuth = np.abs(np.degrees(np.arctan2(offset[:, 0], offset[:, 2])))
    elevation = np.degrees(np.arctan2(offset[:, 1], np.hypot(offset[:, 0], offset[:, 2])))
    label = np.where(azimuth < FACE_AZIMUTH, 0, 2)
    label[elevation >= CROWN_ELEVATION] = 1
    label[elevation < NECK_ELEVATION] = np.where(azimuth < NECK_SIDE_AZIMUTH, 3, 4)[elevation < NECK_ELEVATION]
    return label


def pieces(vertex_count: int, faces: np.ndarray, label: np.ndarray) -> list[np.ndarray]:
    """Face index arrays of the edge-connected pieces of each region, largest first."""
    sides = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    owner = np.tile(np.arange(len(faces)), 3)
    key = np.sort(sides, axis=1)
    _, edge, counts = np.unique(key, axis=0, return_inverse=True, return_counts=True)
    edge = edge.ravel()
    order = np.argsort(edge, kind="stable")
    shared = counts[edge[order]] == 2
    first, second = owner[order][shared][0::2], owner[order][shared][1::2]
    same = label[first] == label[second]
    graph = sparse.coo_matrix((np.ones(same.sum()), (first[same], second[same])), shape=(len(faces),) * 2)
    _, component = connected_components(graph, directed=False)
    groups = np.split(np.argsort(component, kind="stable"), np.cumsum(np.bincount(component))[:-1])
    return sorted(groups, key=len, reverse=True)


def _local_corners(points: np.ndarray) -> np.ndarray:
    """F x 3 x 2: each triangle's corners in its own plane (first corner at the origin)."""
    first, second = points[:, 1] - points[:, 0], points[:, 2] - points[:, 0]
    length = np.maximum(np.linalg.norm(first, axis=1), 1e-12)
    axis_x = first / length[:, None]
    normal = np.cross(first, second)
    axis_y = np.cross(normal / np.maximum(np.linalg.norm(normal, axis=1), 1e-24)[:, None], axis_x)
    return np.stack([np.zeros((len(points), 2)), np.stack([length, np.zeros(len(points))], 1),
                     np.stack([(second * axis_x).sum(1), (second * axis_y).sum(1)], 1)], axis=1)


def lscm(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """V x 2 conformal flattening of a disc-like piece (`faces` index `vertices`)."""
    corners = _local_corners(vertices[faces])
    area2 = np.abs(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]))
    weight = 1.0 / np.sqrt(np.maximum(area2, 1e-20))
    # W_j = (x_l - x_k) + i (y_l - y_k) for corner j with (j, k, l) in cyclic order.
    w = corners[:, [2, 0, 1]] - corners[:, [1, 2, 0]]
    a, b = w[..., 0] * weight[:, None], w[..., 1] * weight[:, None]
    count, rows = len(vertices), np.repeat(np.arange(len(faces)), 3)
    columns = faces.ravel()
    # Real and imaginary parts of sum_j W_j (u_j + i v_j) = 0; unknowns [u, v].
    matrix = sparse.coo_matrix(
        (np.concatenate([a.ravel(), -b.ravel(), b.ravel(), a.ravel()]),
         (np.concatenate([rows, rows, rows + len(faces), rows + len(faces)]),
          np.concatenate([columns, columns + count, columns, columns + count]))),
        shape=(2 * len(faces), 2 * count)).tocsc()
    # Pin the two vertices furthest apart (along the piece's longest axis) to (0,0) and (1,0).
    centred = vertices - vertices.mean(0)
    axis = np.linalg.svd(centred, full_matrices=False)[2][0]
    along = centred @ axis
    pinned = np.array([np.argmin(along), np.argmax(along)])
    pinned_values = np.array([0.0, 1.0, 0.0, 0.0])  # u of both, then v of both
    pinned_columns = np.concatenate([pinned, pinned + count])
    free = np.setdiff1d(np.arange(2 * count), pinned_columns)
    rhs = -matrix[:, pinned_columns] @ pinned_values
    solve_for = matrix[:, free]
    solution = spsolve((solve_for.T @ solve_for).tocsc(), solve_for.T @ rhs)
    flat = np.zeros(2 * count)
    flat[free], flat[pinned_columns] = solution, pinned_values
    return np.stack([flat[:count], flat[count:]], axis=1)


def _signed_areas(uvs: np.ndarray) -> np.ndarray:
    """F: signed area of each F x 3 x 2 UV triangle."""
    return np.cross(uvs[:, 1] - uvs[:, 0], uvs[:, 2] - uvs[:, 0]) / 2


def _flipped(corner_uvs: np.ndarray) -> np.ndarray:
    """F bools: the UV triangle is turned over, by more than a sliver of no visible size
    (decimation leaves faces ~1e-5 of the mean area, which LSCM may turn either way)."""
    signed = _signed_areas(corner_uvs)
    return signed < -FLIP_TOLERANCE * np.abs(signed).mean()


def _untangle(uv: np.ndarray, faces: np.ndarray, rounds: int = UNTANGLE_ROUNDS) -> np.ndarray:
    """Move the corners of flipped faces to their neighbours' mean (Tutte's embedding,
    locally), widening the moved set by a ring when that is not enough."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adjacency = sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(uv),) * 2).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(float)
    degree = np.asarray(adjacency.sum(1)).ravel()
    moving = np.zeros(len(uv), bool)
    for round_ in range(rounds):
        flipped = _flipped(uv[faces])
        if not flipped.any():
            break
        moving[faces[flipped].ravel()] = True
        if round_ % 10 == 9:
            moving |= (adjacency @ moving) > 0
        for _ in range(5):
            mean = (adjacency @ uv) / np.maximum(degree, 1)[:, None]
            uv[moving] = mean[moving]
    return uv


def flatten(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(corner UVs, folded): len(faces) x 3 x 2 LSCM UVs of a piece, untangled where it
    folded, and the faces still flipped after that (with the faces around them)."""
    used, local = np.unique(faces, return_inverse=True)
    local = local.reshape(faces.shape)
    uv = lscm(vertices[used], local)
    if not np.isfinite(uv).all():
        return np.zeros((len(faces), 3, 2)), np.ones(len(faces), bool)
    if _signed_areas(uv[local]).sum() < 0:
        uv[:, 0] *= -1
    uv = _untangle(uv, local)
    corners = uv[local]
    near_fold = np.zeros(len(used), bool)
    near_fold[local[_flipped(corners)].ravel()] = True
    return corners, near_fold[local].any(axis=1)


def head_charts(vertices: np.ndarray, faces: np.ndarray, centre) -> tuple[list[Chart], np.ndarray]:
    """The flattened charts, and the faces (indices) left for another unwrapper: those
    where a flattening still folds over (LSCM can, near sharp creases: mouth corners,
    ear rims). Those are flattened once more, piece by piece, before giving up."""
    label = regions(vertices, faces, np.asarray(centre, float))
    charts, rest = [], np.zeros(0, np.int64)
    for attempt in range(2):
        todo = pieces(len(vertices), faces, label) if attempt == 0 else \
            [rest[group] for group in pieces(len(vertices), faces[rest], label[rest])]
        rest_parts = []
        for piece in todo:
            corners, folded = flatten(vertices, faces[piece])
            if (~folded).any():
                charts.append(Chart(piece[~folded], corners[~folded]))
            rest_parts.append(piece[folded])
        rest = np.concatenate(rest_parts) if rest_parts else np.zeros(0, np.int64)
        if not len(rest):
            break
    return charts, rest

"""Mesh cleanup after marching cubes: components, face budget, closing the decimated surface, winding."""

from __future__ import annotations

import fast_simplification
import numpy as np
from scipy.sparse import coo_matrix, diags
from scipy.sparse.csgraph import connected_components

from joker_core.errors import JokerError

MIN_FACE_BUDGET = 100


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop vertices no face uses and renumber the faces."""
    used, new_faces = np.unique(faces, return_inverse=True)
    return vertices[used], new_faces.reshape(faces.shape)


def face_components(vertex_count: int, faces: np.ndarray) -> np.ndarray:
    """Component label of every face (faces sharing a vertex are connected)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    graph = coo_matrix((np.ones(len(edges), bool), (edges[:, 0], edges[:, 1])),
                       shape=(vertex_count, vertex_count))
    _, vertex_labels = connected_components(graph, directed=False)
    return vertex_labels[faces[:, 0]]


def check_component_fraction(min_fraction: float) -> None:
    if not 0.0 < min_fraction <= 1.0:
        raise JokerError(f"component fraction {min_fraction} is outside (0, 1]",
                         "use 1.0 to keep only the largest part, or e.g. 0.1 to also keep parts a tenth its size")


def keep_large_components(vertices: np.ndarray, faces: np.ndarray,
                          min_fraction: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Keep the components with at least `min_fraction` of the largest one's faces.

    1.0 keeps only the largest (the head); floaters, the usual radiance-field debris,
    are far smaller than it and go with any fraction above their size.
    """
    check_component_fraction(min_fraction)
    labels = face_components(len(vertices), faces)
    sizes = np.bincount(labels)
    keep = sizes >= min_fraction * sizes.max()
    return compact(vertices, faces[keep[labels]])


def signed_volume(vertices: np.ndarray, faces: np.ndarray) -> float:
    """Volume enclosed by the surface; positive when the faces wind outward."""
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return float(np.einsum("ij,ij->", a, np.cross(b, c)) / 6.0)


def orient_outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Faces wound so the normals point out of the enclosed volume."""
    return faces[:, ::-1].copy() if signed_volume(vertices, faces) < 0 else faces


def _face_edges(faces: np.ndarray) -> np.ndarray:
    """3F x 2 directed edges: all first edges, then all second, then all third."""
    return np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])


def _edge_use(faces: np.ndarray) -> np.ndarray:
    """3F: how many faces share each face edge (as `_face_edges` orders them)."""
    _, inverse, counts = np.unique(np.sort(_face_edges(faces), axis=1), axis=0,
                                   return_inverse=True, return_counts=True)
    return counts[inverse.ravel()]


def _drop_duplicate_faces(faces: np.ndarray) -> np.ndarray:
    """Faces over the same three vertices come in back-to-back pairs (a collapsed tube):
    both go."""
    _, inverse, counts = np.unique(np.sort(faces, axis=1), axis=0, return_inverse=True, return_counts=True)
    return faces[counts[inverse.ravel()] == 1]


def _fill_holes(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Close every hole with a fan of triangles around its centroid, wound like its rim."""
    edges = _face_edges(faces)
    rim = edges[_edge_use(faces) == 1]
    if not len(rim):
        return vertices, faces
    graph = coo_matrix((np.ones(len(rim), bool), (rim[:, 0], rim[:, 1])), shape=(len(vertices),) * 2)
    _, vertex_hole = connected_components(graph, directed=False)
    _, hole = np.unique(vertex_hole[rim[:, 0]], return_inverse=True)
    centres = np.zeros((hole.max() + 1, 3))
    np.add.at(centres, hole, vertices[rim[:, 0]])
    centres /= np.bincount(hole)[:, None]
    fan = np.stack([rim[:, 1], rim[:, 0], len(vertices) + hole], axis=1)
    return np.concatenate([vertices, centres]), np.concatenate([faces, fan])


def close_surface(vertices: np.ndarray, faces: np.ndarray,
                  max_rounds: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Make the surface watertight (every edge between exactly two faces) after decimation.

    Quadric decimation collapses thin tubes of the marching-cubes surface into back-to-back
    duplicate faces and edges shared by four faces. Those faces go, and so do the faces at
    rim vertices where two holes touch, until every hole has a simple rim; the holes (a
    few triangles each) are then closed with fans.
    """
    faces = _drop_duplicate_faces(faces)
    for _ in range(max_rounds):
        use = _edge_use(faces)
        rim = _face_edges(faces)[use == 1]
        pinched = np.bincount(rim[:, 0], minlength=len(vertices)) > 1
        bad = (use > 2).reshape(3, -1).any(axis=0) | pinched[faces].any(axis=1)
        if not bad.any():
            break
        faces = _drop_duplicate_faces(faces[~bad])
    return compact(*_fill_holes(vertices, faces))


def check_face_budget(face_budget: int) -> None:
    if face_budget < MIN_FACE_BUDGET:
        raise JokerError(f"face budget {face_budget} is too small for a head",
                         f"use a face budget of at least {MIN_FACE_BUDGET} (e.g. 20000)")


def decimate(vertices: np.ndarray, faces: np.ndarray, face_budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Quadric edge-collapse simplification down to at most `face_budget` faces."""
    check_face_budget(face_budget)
    if len(faces) <= face_budget:
        return vertices, faces
    simple_vertices, simple_faces = fast_simplification.simplify(vertices, faces, target_count=face_budget)
    return compact(simple_vertices, simple_faces.astype(np.int64))


TAUBIN_SHRINK, TAUBIN_INFLATE = 0.5, -0.53  # Taubin's lambda and mu: a low-pass filter that keeps the volume


def smooth(vertices: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Taubin smoothing (1995): alternate steps towards and away from the neighbours' mean
    take out the marching-cubes lumps without shrinking the head as plain Laplacian
    smoothing does."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    adjacency = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(vertices),) * 2).tocsr()
    adjacency = ((adjacency + adjacency.T) > 0).astype(float)
    mean_of_neighbours = diags(1.0 / np.maximum(np.asarray(adjacency.sum(1)).ravel(), 1)) @ adjacency
    smoothed = np.array(vertices, dtype=np.float64)
    for _ in range(iterations):
        for step in (TAUBIN_SHRINK, TAUBIN_INFLATE):
            smoothed += step * (mean_of_neighbours @ smoothed - smoothed)
    return smoothed

"""Mesh cleanup after marching cubes: components, holes, face budget, winding."""

from __future__ import annotations

import fast_simplification
import numpy as np
import trimesh
from scipy.sparse import coo_matrix
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


def fill_small_holes(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Close the triangle and quad holes (all trimesh fills cheaply); larger ones stay."""
    mesh = trimesh.Trimesh(vertices, faces, process=False)
    if not mesh.is_watertight:
        trimesh.repair.fill_holes(mesh)
    return np.asarray(mesh.vertices), np.asarray(mesh.faces, dtype=np.int64)


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

"""The rig's own topology fitted to a distilled head: every frame of a sequence then shares
one vertex list and one UV layout, so it can be retargeted, smoothed and played as one
animated object.

Start from the posed rig. Each surface vertex (the skin: not the eyeballs, not the mouth
interior, which stay where the rig puts them) looks for the surface along its own normal:

- rounds of closest points on the marching-cubes mesh, taking only faces that look the
  same way as the vertex (a lip never snaps onto the other lip across the open mouth);
- a last round on the field itself: the density is sampled along the vertex normal and the
  crossing of the surface density nearest the vertex is the target, taken only where the
  field goes from inside to outside as one walks outward (never a cavity's far wall).

Between rounds the displacement is solved in closed form under a Laplacian smoothness
term (its own Laplacian, so the rig's detail rides along and faces do not fold):

    min  sum_i w_i |d_i - (t_i - v_i)|^2  +  smoothness * |L d|^2

Vertices without a trusted target follow their neighbours through L. Last, each offset
from the posed rig is shortened by a tolerance (the field's own precision: rig_prior.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sparse
import scipy.sparse.linalg as sparse_linalg
import torch

from joker_core.head_model import HeadModel

from ..render.normal_maps import vertex_normals
from .fields import DensityField, evaluate
from .rig_prior import shrink
from .surface import Surface


@dataclass(frozen=True)
class RegisterSettings:
    rounds: int = 6                  # closest-point rounds on the marching-cubes mesh
    smoothness_start: float = 8.0    # weight of |L d|^2 in the first round: the rig moves as a whole ...
    smoothness: float = 0.3          # ... falling geometrically to this in the last: the detail follows
    max_distance: float = 0.025      # m: a target farther than this is not trusted
    min_agreement: float = 0.3       # cosine between vertex and surface normals
    field_window: float = 0.004      # m each side of the vertex the field is searched along its normal
    field_samples: int = 33          # density samples along that window
    candidate_faces: int = 16        # nearest face centroids searched for each closest point
    relax_rounds: int = 200          # steps that undo turned-over faces (see _relax)
    tolerance: float = 0.0           # m: offsets from the posed rig are shortened by this (rig_prior.py)


@dataclass(frozen=True)
class Registration:
    vertices: np.ndarray   # N x 3, the rig's vertex order, FLAME frame, metres
    moving: np.ndarray     # N bool: the surface vertices that were fitted
    figures: dict          # see register_head
    offset: np.ndarray     # N x 3: vertices minus the posed rig they started from


def surface_vertices(model: HeadModel) -> np.ndarray:
    """The vertices that lie on the head's outer surface: all but the parts the demo head
    names as eyeballs or mouth interior (a FLAME file names none: all)."""
    moving = np.ones(model.n_vertices, bool)
    parts = model.metadata.get("vertex_parts", {})
    inner = set(model.metadata.get("mouth_interior_parts", [])) | {p for p in parts if p.startswith("eyeball")}
    for name in inner & parts.keys():
        start, end = parts[name]
        moving[start:end] = False
    return moving


def uniform_laplacian(faces: np.ndarray, n: int) -> sparse.csr_matrix:
    """L = I - D^-1 A over the mesh's edges."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.unique(np.sort(edges, axis=1), axis=0)
    adjacency = sparse.coo_matrix((np.ones(2 * len(edges)), (np.r_[edges[:, 0], edges[:, 1]],
                                                             np.r_[edges[:, 1], edges[:, 0]])), shape=(n, n)).tocsr()
    degree = np.maximum(np.asarray(adjacency.sum(axis=1)).ravel(), 1)
    return (sparse.identity(n) - sparse.diags(1.0 / degree) @ adjacency).tocsr()


def _field_targets(density: DensityField, iso_level: float, points: np.ndarray, normals: np.ndarray,
                   settings: RegisterSettings, device: str) -> tuple[np.ndarray, np.ndarray]:
    """Where each point's normal line crosses the surface density going outward (inside ->
    outside), the crossing nearest the point; (targets, found)."""
    offsets = np.linspace(-settings.field_window, settings.field_window, settings.field_samples)
    samples = points[:, None] + offsets[None, :, None] * normals[:, None]
    values = evaluate(density, samples.reshape(-1, 3).astype(np.float32), what="density", channels=1,
                      device=device).reshape(len(points), -1) - iso_level
    outward = (values[:, :-1] >= 0) & (values[:, 1:] < 0)
    fraction = values[:, :-1] / np.where(outward, values[:, :-1] - values[:, 1:], 1.0)
    crossing = offsets[:-1] + fraction * (offsets[1] - offsets[0])
    crossing = np.where(outward, crossing, np.inf)
    best = np.abs(crossing).argmin(axis=1)
    offset = crossing[np.arange(len(points)), best]
    found = np.isfinite(offset)
    return points + np.where(found, offset, 0.0)[:, None] * normals, found


def _solve(vertices: np.ndarray, targets: np.ndarray, weights: np.ndarray, laplacian: sparse.csr_matrix,
           smoothness: float, guess: np.ndarray) -> np.ndarray:
    """Vertices + the displacement minimising the data term plus smoothness * |L d|^2, by
    conjugate gradients from `guess` (a displacement; the system is symmetric positive
    definite, and a direct factorisation fills in badly: seconds instead of milliseconds)."""
    system = (sparse.diags(weights + 1e-9) + smoothness * (laplacian.T @ laplacian)).tocsr()
    right = weights[:, None] * (targets - vertices)
    solved = [sparse_linalg.cg(system, right[:, axis], x0=guess[:, axis], rtol=1e-10, atol=1e-14, maxiter=2000)[0]
              for axis in range(3)]
    return vertices + np.stack(solved, axis=1)


def register_head(posed: np.ndarray, faces: np.ndarray, moving: np.ndarray, mesh_vertices: np.ndarray,
                  mesh_faces: np.ndarray, density: DensityField, iso_level: float,
                  settings: RegisterSettings = RegisterSettings(), device: str = "cpu") -> Registration:
    """Fit the posed rig (`posed`, `faces`; only the `moving` vertices, see surface_vertices)
    to the marching-cubes mesh and the field's iso-surface; a function of them alone (no
    state from an earlier frame), so a frame whose field did not change keeps its head
    exactly. Figures: the fitted vertices' distance to the marching-cubes surface (mean, p95, max, metres), the rig's own before
    fitting, the share of vertices that found the surface, and flipped faces."""
    faces = np.asarray(faces, np.int64)
    posed = np.asarray(posed, np.float64)
    index = np.flatnonzero(moving)
    # The surface part's own faces and Laplacian; the other parts stay put.
    remap = np.full(len(posed), -1)
    remap[index] = np.arange(len(index))
    local_faces = remap[faces[np.asarray(moving)[faces].all(axis=1)]]
    laplacian = uniform_laplacian(local_faces, len(index))
    surface = Surface(mesh_vertices, mesh_faces, settings.candidate_faces)
    rest = posed[index]

    current = rest
    weights = np.zeros(len(index))
    schedule = np.geomspace(settings.smoothness_start, settings.smoothness, settings.rounds + 1)
    for round_, smoothness in enumerate(schedule):
        normals = vertex_normals(torch.from_numpy(current), torch.from_numpy(local_faces)).numpy()
        targets, distance = surface.closest(current, normals, settings.min_agreement)
        found = distance <= settings.max_distance
        # Only the correction along the vertex's own normal: sliding along the surface is
        # what bunches vertices up and turns faces over at creases.
        along = ((targets - current) * normals).sum(axis=1, keepdims=True)
        targets = current + along * normals
        if round_ == settings.rounds:  # the last round: the field itself, where it answers
            on_field, crossed = _field_targets(density, iso_level, current, normals, settings, device)
            targets = np.where(crossed[:, None], on_field, targets)
            found |= crossed
        weights = found.astype(np.float64)
        current = _solve(rest, np.where(found[:, None], targets, rest), weights, laplacian, smoothness,
                         current - rest)
    current = _relax(rest, rest + shrink(current - rest, settings.tolerance), local_faces, settings.relax_rounds)

    vertices = posed.copy()
    vertices[index] = current
    return Registration(vertices, np.asarray(moving, bool), offset=vertices - posed, figures={
        **_distances("registered", surface.closest(current)[1]),
        **_distances("rig", surface.closest(rest)[1]),
        "surface_found_share": float(weights.mean()) if len(weights) else 0.0,
        "flipped_faces": flipped_faces(posed, vertices, faces),
        "fitted_vertices": int(len(index)),
    })


def _relax(rest: np.ndarray, fitted: np.ndarray, faces: np.ndarray, rounds: int) -> np.ndarray:
    """Where a face turned over (targets that cross, e.g. at a crease of a coarse surface or
    across the rig's sliver faces at the eyelids), move its corners by the face's mean
    displacement: a translated face keeps its orientation. Repeat while any face (or one
    that the step turned) stays over; shared corners take the mean of their faces' means."""
    displacement = fitted - rest
    for _ in range(rounds):
        turned = np.flatnonzero(_turned(rest, rest + displacement, faces))
        if not len(turned):
            break
        corners = faces[turned]
        means = displacement[corners].mean(axis=1)
        total, count = np.zeros_like(displacement), np.zeros(len(rest))
        np.add.at(total, corners.ravel(), np.repeat(means, 3, axis=0))
        np.add.at(count, corners.ravel(), 1.0)
        touched = count > 0
        displacement[touched] = total[touched] / count[touched, None]
    return rest + displacement


def _turned(before: np.ndarray, after: np.ndarray, faces: np.ndarray) -> np.ndarray:
    def normals(vertices):
        a, b, c = (vertices[faces[:, i]] for i in range(3))
        return np.cross(b - a, c - a)
    return (normals(before) * normals(after)).sum(axis=1) < 0


def flipped_faces(before: np.ndarray, after: np.ndarray, faces: np.ndarray) -> int:
    """Faces whose normal turned by more than 90 degrees between two poses of one mesh."""
    return int(_turned(before, after, faces).sum())


def _distances(prefix: str, distance: np.ndarray) -> dict:
    return {f"{prefix}_to_mesh_mean_m": float(distance.mean()),
            f"{prefix}_to_mesh_p95_m": float(np.percentile(distance, 95)),
            f"{prefix}_to_mesh_max_m": float(distance.max())}

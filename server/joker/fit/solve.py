"""The rig fitted to a photo's landmarks: identity shape, the photo's own expression and
jaw, the head's pose and the photo's perspective camera.

Unknowns: shape and expression coefficients, the jaw's rotation, the head's rotation and
translation in the camera frame, and log focal length. The loss is a robust (Cauchy)
reprojection of the embedded landmarks (the jaw contour's found afresh on the silhouette
for each pose the solve tries), scaled to the face's size so it reads the same at any
resolution, plus Gaussian priors on the coefficients and the focal length (depth and
focal, or head size and distance, are otherwise nearly interchangeable). A rigid solve
starts it; Levenberg-Marquardt finishes, through the same LBS as every other part (joker.rig).

The eyes' rotations are not observable from the 68 points (no pupils); they stay zero.
The head's pose is the camera's: the rig keeps global/neck pose zero and `ReferenceFit.camera`
sees the head as the photo does.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from joker.rig.lbs_torch import lbs, torch_rig
from joker_core.cameras import Camera
from joker_core.errors import JokerError
from joker_core.head_model import HeadModel
from joker_core.lbs import RigArrays, rotation_deltas
from joker_core.rig_params import RigParams

from .embedding import CHIN, LandmarkEmbedding, embedding_for
from .landmarks import (DEFAULT_LANDMARK_MODEL, EXPLICIT_ALIGNMENT_FIX, Landmarks, check_landmark_model,
                        detect_landmarks, eye_centres)

EYE_POINTS = np.arange(36, 48)


@dataclass(frozen=True)
class FitSettings:
    landmark_model: str = DEFAULT_LANDMARK_MODEL
    embedding_path: str | None = None  # a FLAME landmark embedding file (FLAME heads)
    fov_deg: float = 25.0           # the focal prior's centre, across the photo's longer side
    focal_sigma: float = 0.35       # its spread, in log focal
    shape_sigma: float = 0.6        # coefficient units (the demo head's: ~2 SD of adults)
    expression_sigma: float = 0.5
    jaw_sigma: float = 0.25         # rad
    robust_scale: float = 0.02      # of the interocular... of the face size: Cauchy scale
    max_residual: float = 0.06      # RMS residual bound, as a fraction of the eye distance x 2
    iterations: int = 30           # Levenberg-Marquardt steps
    # Named expression actions (FACS-like, the demo head's) stay >= 0: no face makes a
    # negative action, and one lets the expression absorb the person's own brow height and
    # eye shape, which `neutral` would then undo. PCA expressions (FLAME's) are signed.
    one_sided_expressions: bool = True
    # The jaw contour (points 0-7, 9-16) as silhouette landmarks, where the embedding has it:
    # it pins the face's width and the chin's height, which the surface points leave open.
    jaw_contour: bool = True
    prior_weight: float = 3e-4     # priors against the data term (residuals in face widths)

    def __post_init__(self):
        check_landmark_model(self.landmark_model)
        if not 5.0 <= self.fov_deg <= 120.0:
            raise JokerError(f"fit field of view {self.fov_deg} degrees is out of range",
                             "give a field of view between 5 and 120 degrees")

    @classmethod
    def from_dict(cls, data: dict) -> "FitSettings":
        names = {"landmark_model": str, "landmarks": str, "embedding_path": str, "fov_deg": float}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise JokerError(f"unknown fit setting '{unknown[0]}'", "use landmarks, embedding_path or fov_deg")
        try:
            values = {("landmark_model" if k == "landmarks" else k): names[k](v) for k, v in data.items()}
        except (TypeError, ValueError) as exc:
            raise JokerError(f"fit settings are malformed ({exc})", "give fov_deg as a number") from exc
        return cls(**values)


@dataclass
class ReferenceFit:
    """The person in the photo, as the rig sees them."""

    params: RigParams         # shape, expression, jaw pose (global/neck pose and translation zero)
    camera: Camera            # the photo's camera, looking at the rig in the FLAME frame
    residual_px: float        # RMS landmark reprojection error in photo pixels
    confidence: float         # 1: landmarks explained exactly; 0: at the residual bound
    landmarks: Landmarks | None = None  # what the fit was fitted to
    notes: list[str] = field(default_factory=list)

    @property
    def identity(self) -> RigParams:
        """The person's shape alone: the rig in any expression keeps it."""
        return RigParams(shape=self.params.shape)

    def to_dict(self) -> dict:
        return {"params": self.params.to_dict(), "camera": self.camera.to_dict(),
                "residual_px": self.residual_px, "confidence": self.confidence,
                "landmarks": None if self.landmarks is None else self.landmarks.to_dict(),
                "notes": list(self.notes)}

    @classmethod
    def from_dict(cls, data: dict) -> "ReferenceFit":
        try:
            landmarks = data.get("landmarks")
            return cls(RigParams.from_dict(data["params"]), Camera.from_dict(data["camera"]),
                       float(data["residual_px"]), float(data["confidence"]),
                       None if landmarks is None else Landmarks.from_dict(landmarks), list(data.get("notes", [])))
        except (KeyError, TypeError, ValueError) as exc:
            raise JokerError(f"reference fit is malformed ({exc})",
                             "send the fit as `joker fit` or POST /v1/fit wrote it") from exc


def fit_photo(photo: np.ndarray, model: HeadModel, settings: FitSettings = FitSettings()) -> ReferenceFit:
    """Detect the face in an H x W x 3 uint8 RGB photo and fit `model` to it."""
    landmarks = detect_landmarks(photo, settings.landmark_model)
    return fit_landmarks(landmarks, model, photo.shape[1], photo.shape[0], settings)


def fit_landmarks(landmarks: Landmarks, model: HeadModel, width: int, height: int,
                  settings: FitSettings = FitSettings(), check: bool = True) -> ReferenceFit:
    """Fit `model` to landmarks seen in a width x height photo. `check`: refuse a fit whose
    residual is above the bound (a profile, an occluded face)."""
    embedding = cached_embedding(model, settings.embedding_path)
    if embedding is None:
        raise JokerError(f"head model '{model.name}' has no landmark embedding, so it cannot be fitted to a photo",
                         "give the FLAME landmark embedding file (flame_static_embedding.pkl or DECA's "
                         "landmark_embedding.npy), or align the photo by its eyes or camera")
    if not settings.jaw_contour:
        embedding = replace(embedding, contour=None)
    used = landmarks.indices[np.isin(landmarks.indices, embedding.all_indices)]
    embedding = embedding.restricted(used)
    targets = landmarks.subset(embedding.all_indices)
    started = time.perf_counter()
    fit = _solve(model, embedding, targets, width, height, settings, eye_centres(landmarks))
    fit.landmarks = landmarks
    fit.notes.append(f"fitted {len(used)} landmarks in {time.perf_counter() - started:.2f} s")
    if landmarks.model == "5":
        fit.notes.append("5-point landmarks: identity and expression come from the priors, not the photo")
    if check and fit.confidence <= 0.0:
        raise JokerError(f"the rig does not fit the face in the photo (landmark residual {fit.residual_px:.1f} px; "
                         "a profile or an occluded face?)", EXPLICIT_ALIGNMENT_FIX)
    return fit


def _solve(model: HeadModel, embedding: LandmarkEmbedding, targets: np.ndarray, width: int, height: int,
           settings: FitSettings, eyes: np.ndarray) -> ReferenceFit:
    dtype = torch.float64
    rig, faces, contour_edges = _cached_landmark_rig(model, embedding)
    target = torch.as_tensor(targets, dtype=dtype)
    scale = 2.0 * float(np.linalg.norm(eyes[1] - eyes[0]))  # about the face's width, in pixels
    focal0 = 0.5 * max(width, height) / math.tan(math.radians(settings.fov_deg) / 2.0)
    centre = torch.tensor([width / 2.0, height / 2.0], dtype=dtype)
    rich = len(targets) > 10  # the 5-point model cannot tell identity or expression
    sizes = {"rotation": 3, "translation": 3, "log_focal": 1, "shape": model.n_shape,
             "expression": model.n_expr, "jaw": 3}
    offsets = np.cumsum([0, *sizes.values()])
    slices = {name: slice(a, b) for name, a, b in zip(sizes, offsets[:-1], offsets[1:])}
    sigmas = torch.cat([torch.full((sizes[name],), sigma, dtype=dtype) for name, sigma in (
        ("shape", settings.shape_sigma), ("expression", settings.expression_sigma), ("jaw", settings.jaw_sigma))])
    prior_scale = math.sqrt(settings.prior_weight)

    def project(x: torch.Tensor) -> torch.Tensor:
        if rich:
            posed = lbs(rig, shape=x[None, slices["shape"]], expression=x[None, slices["expression"]],
                        jaw_pose=x[None, slices["jaw"]]).vertices[0]
        else:
            posed = rig.v_template
        points = embedding.points(posed, faces)
        turn = torch.eye(3, dtype=dtype) + rotation_deltas(rig, x[slices["rotation"]])
        if embedding.contour is not None:
            silhouette = embedding.contour.points(posed, turn, x[slices["translation"]], contour_edges)
            points = torch.cat([points, silhouette])
        camera_points = points @ turn.T + x[slices["translation"]]
        depth = -camera_points[:, 2].clamp(max=-1e-3)
        flat = camera_points[:, :2] / depth[:, None] * torch.exp(x[slices["log_focal"]])
        return centre + torch.stack([flat[:, 0], -flat[:, 1]], 1)

    def residuals(x: torch.Tensor) -> torch.Tensor:
        """Reprojection in face widths, then the priors as residuals."""
        data = ((project(x) - target) / scale).reshape(-1)
        focal = (x[slices["log_focal"]] - math.log(focal0)) / settings.focal_sigma
        coefficients = x[slices["shape"].start:] / sigmas
        return torch.cat([data, prior_scale * focal, prior_scale * coefficients])

    static = len(embedding.indices)  # the rigid start reads the surface points alone
    rest = embedding.points(rig.v_template, faces).numpy()
    rotation, translation = _rigid_start(rest, embedding.indices, targets[:static], focal0, centre.numpy())
    x = torch.zeros(int(offsets[-1]), dtype=dtype)
    x[slices["rotation"]], x[slices["translation"]] = torch.as_tensor(rotation), torch.as_tensor(translation)
    x[slices["log_focal"]] = math.log(focal0)
    rigid = torch.zeros(len(x), dtype=torch.bool)
    rigid[:slices["shape"].start] = True
    x = _levenberg_marquardt(residuals, x, rigid, len(target), settings.robust_scale, 10)
    if rich:
        lowest = torch.full_like(x, -math.inf)
        if settings.one_sided_expressions and model.expression_names:
            lowest[slices["expression"]] = 0.0
        x = _levenberg_marquardt(residuals, x, torch.ones_like(rigid), len(target), settings.robust_scale,
                                 settings.iterations, lowest)

    with torch.no_grad():
        residual_px = float(((project(x) - target) ** 2).sum(1).mean().sqrt())
        turn = (torch.eye(3, dtype=dtype) + rotation_deltas(rig, x[slices["rotation"]])).numpy()
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = turn, x[slices["translation"]].numpy()
    focal = float(torch.exp(x[slices["log_focal"]]))
    camera = Camera(np.linalg.inv(w2c), focal, focal, width / 2.0, height / 2.0, width, height)
    params = RigParams(shape=x[slices["shape"]].numpy(), expression=x[slices["expression"]].numpy(),
                       jaw_pose=x[slices["jaw"]].numpy())
    bound = settings.max_residual * scale
    return ReferenceFit(params, camera, residual_px, float(np.clip(1.0 - residual_px / bound, 0.0, 1.0)))


def _levenberg_marquardt(residuals, x: torch.Tensor, free: torch.Tensor, n_points: int, robust_scale: float,
                         iterations: int, lowest: torch.Tensor | None = None) -> torch.Tensor:
    """Minimise sum(cauchy(|data residual of each point|)) + |prior residuals|^2 over the
    `free` unknowns, each kept >= `lowest` (when given): Gauss-Newton steps on the
    iteratively reweighted (IRLS) problem, damped as Levenberg-Marquardt, over the unknowns
    not held at their bound, then projected onto the bounds; the Jacobian comes from torch.func."""
    jacobian = torch.func.jacfwd(residuals)
    c2 = robust_scale ** 2

    def cost(r: torch.Tensor) -> float:
        data = r[: 2 * n_points].reshape(n_points, 2)
        return float(c2 * torch.log1p((data ** 2).sum(1) / c2).sum() + (r[2 * n_points:] ** 2).sum())

    damping = 1e-3
    r = residuals(x)
    current = cost(r)
    for _ in range(iterations):
        per_point = 1.0 / (1.0 + (r[: 2 * n_points].reshape(n_points, 2) ** 2).sum(1) / c2)
        weights = torch.cat([per_point.repeat_interleave(2), torch.ones(len(r) - 2 * n_points, dtype=r.dtype)])
        J = jacobian(x)
        moving = free.clone()
        if lowest is not None:  # an unknown at its bound that descent would push below it stays put
            moving &= ~((x <= lowest) & (J.T @ (weights * r) > 0))
        J = J[:, moving]
        normal = J.T @ (weights[:, None] * J)
        gradient = J.T @ (weights * r)
        improved = False
        for _ in range(8):
            step = torch.linalg.solve(normal + damping * torch.diag(normal.diagonal() + 1e-9), -gradient)
            trial = x.clone()
            trial[moving] += step
            if lowest is not None:
                trial = torch.maximum(trial, lowest)
            r_trial = residuals(trial)
            trial_cost = cost(r_trial)
            if trial_cost < current:
                x, r, improved = trial, r_trial, current - trial_cost > 1e-12 * max(current, 1e-30)
                current = trial_cost
                damping = max(damping / 3.0, 1e-9)
                break
            damping *= 4.0
        if not improved:
            break
    return x


def landmark_rig(rig: RigArrays, faces: np.ndarray,
                 embedding: LandmarkEmbedding) -> tuple[RigArrays, torch.Tensor, torch.Tensor | None]:
    """The rig reduced to the vertices the landmarks lie on (faces and the jaw contour's
    edges re-indexed to them), exact for those: FLAME regresses its joints linearly from
    the shaped mesh, so the joints ride along as extra 'vertices' whose shape basis is the
    regressed one, and the reduced regressor just reads them out. The fit's forward pass
    then costs a few hundred vertices instead of the whole head."""
    contour = embedding.contour
    static = faces[embedding.faces].ravel()
    used = np.unique(static if contour is None else np.concatenate([static, contour.edges.ravel()]))
    local = np.searchsorted(used, static)
    n, joints, xp = len(rig.v_template), rig.joint_regressor.shape[0], rig.xp
    ids = torch.as_tensor(used)
    regressor = rig.joint_regressor

    def extended(basis: torch.Tensor) -> torch.Tensor:  # rows of 3N -> rows of 3(n + J)
        per_vertex = basis.reshape(basis.shape[0], n, 3)
        regressed = torch.einsum("jn,knc->kjc", regressor, per_vertex)
        return torch.cat([per_vertex[:, ids], regressed], 1).reshape(basis.shape[0], -1)

    reduced = replace(
        rig,
        v_template=torch.cat([rig.v_template[ids], regressor @ rig.v_template]),
        shape_basis=extended(rig.shape_basis),
        pose_basis=torch.cat([rig.pose_basis.reshape(-1, n, 3)[:, ids],
                              rig.pose_basis.new_zeros(rig.pose_basis.shape[0], joints, 3)], 1).reshape(
                                  rig.pose_basis.shape[0], -1),
        joint_regressor=torch.cat([regressor.new_zeros(joints, len(used)), torch.eye(joints, dtype=regressor.dtype)], 1),
        weights=torch.cat([rig.weights[ids], torch.eye(joints, dtype=regressor.dtype)]),
    )
    remapped = np.zeros_like(faces)
    remapped[embedding.faces] = local.reshape(-1, 3)
    edges = None if contour is None else torch.as_tensor(np.searchsorted(used, contour.edges))
    return reduced, torch.as_tensor(remapped), edges


def _rigid_start(points: np.ndarray, indices: np.ndarray, pixels: np.ndarray, focal: float,
                 centre: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Axis-angle and translation of a frontal head whose landmarks' spread and roll match
    the pixels' (weak perspective), to start the solve in the right basin."""
    flat = np.stack([points[:, 0], -points[:, 1]], 1)
    source, target = flat - flat.mean(0), pixels - pixels.mean(0)
    zs, zt = source[:, 0] + 1j * source[:, 1], target[:, 0] + 1j * target[:, 1]
    a = (np.conj(zs) * zt).sum() / (np.abs(zs) ** 2).sum()
    depth = focal / max(abs(a), 1e-9)  # metres: pixels per metre = focal / depth
    roll = -float(np.angle(a))         # image y runs down, camera y up
    rotation = np.array([0.0, 0.0, roll])
    c, s = math.cos(roll), math.sin(roll)
    turned = points.mean(0) @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    offset = (pixels.mean(0) - centre) / focal * depth
    translation = np.array([offset[0], -offset[1], -depth]) - turned
    return rotation, translation


_EMBEDDINGS: dict[tuple, LandmarkEmbedding | None] = {}
_RIGS: dict[tuple, tuple[RigArrays, torch.Tensor, torch.Tensor | None]] = {}


# Every array the landmark rig is built from: two models that share a template but not
# their blendshapes (a FLAME release, an edited shape space) must not share a cache entry.
_RIG_ARRAYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "faces")


def _model_key(model: HeadModel) -> tuple:
    digest = hashlib.sha1()
    for name in _RIG_ARRAYS:
        digest.update(np.ascontiguousarray(getattr(model, name)).tobytes())
    return (digest.hexdigest(), model.is_demo, model.n_shape, model.n_expr)


def cached_embedding(model: HeadModel, path: str | None) -> LandmarkEmbedding | None:
    """The model's embedding, computed once per head geometry and file."""
    key = (*_model_key(model), path)
    if key not in _EMBEDDINGS:
        _EMBEDDINGS[key] = embedding_for(model, path)
    return _EMBEDDINGS[key]


def _cached_landmark_rig(model: HeadModel,
                         embedding: LandmarkEmbedding) -> tuple[RigArrays, torch.Tensor, torch.Tensor | None]:
    contour = embedding.contour
    key = (*_model_key(model), embedding.faces.tobytes(), embedding.barycentric.tobytes(),
           None if contour is None else contour.edges.tobytes())
    if key not in _RIGS:
        _RIGS[key] = landmark_rig(torch_rig(model, dtype=torch.float64), model.faces, embedding)
    return _RIGS[key]


def fitted_vertices(model: HeadModel, fit: ReferenceFit) -> np.ndarray:
    """The rig posed as the photo shows the person (FLAME frame; the camera does the pose)."""
    from joker_core.lbs import numpy_rig, pose

    return pose(numpy_rig(model), fit.params).vertices


def with_identity(params: RigParams, fit: ReferenceFit) -> RigParams:
    """`params` wearing the fitted person's shape."""
    return replace(params, shape=fit.params.shape.copy())

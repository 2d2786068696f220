"""Where the rig sits in the photo: a camera for the reference photo.

Automatic: dlib's face detector and landmark model (joker.fit.landmarks) find the face,
its eyes and mouth; the rig's eye (and, when the head names them, mouth) landmarks are
fitted to those image points by a similarity in the image plane (roll, scale, shift) under a fixed lens, which is then
refined with the exact perspective projection. Explicit: the caller gives the photo's
camera outright (e.g. from the alignment done in Blender) or the eye pixels, and the
viewpoint (azimuth/elevation of the photo around the head, as in a ViewRig).

The eyes also bound where the photo shows the face (FaceEllipse, from typical
proportions), so the texture takes no collar or background where the rig's proportions
differ from the person's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import least_squares

from joker_core.cameras import Camera, look_at, orbit_position
from joker_core.errors import JokerError
from joker_core.head_model import JOINT_NAMES, HeadModel
from joker_core.protocol import ALIGNMENT_RANGES, validate_alignment

from ...fit.landmarks import (DEFAULT_LANDMARK_MODEL, EXPLICIT_ALIGNMENT_FIX, Landmarks, detect_landmarks,
                              eye_centres)

# Where dlib's frontal detector puts a frontal face's features in its box (fractions of the
# box, measured on frontal portraits); used where the landmark model names no mouth.
BOX_EYE_HEIGHT = 0.23
BOX_EYE_SPREAD = 0.245  # eye centres at 0.5 -/+ this of the width
BOX_MOUTH_HEIGHT = 0.65
MOUTH_CORNERS = np.array([48, 54])  # in the 68-point layout

@dataclass(frozen=True)
class FaceDetection:
    box: np.ndarray          # x, y, width, height in photo pixels
    eyes: np.ndarray | None  # 2 x 2 eye centres in photo pixels, image-left first; None if not found
    landmarks: Landmarks | None = None  # what the landmark model found


@dataclass(frozen=True)
class AlignmentHints:
    """What the user knows about the photo. A `camera` wins over everything else; `eyes`
    replace the detection; the viewpoint and lens shape the automatic fit."""

    camera: Camera | None = None
    eyes: tuple[tuple[float, float], tuple[float, float]] | None = None
    azimuth_deg: float = 0.0
    elevation_deg: float = 0.0
    fov_deg: float = 25.0  # across the photo's longer side: a portrait lens

    def __post_init__(self):
        for name, (low, high) in ALIGNMENT_RANGES.items():
            if not low <= getattr(self, name) <= high:
                raise JokerError(f"photo alignment {name} = {getattr(self, name)} is out of range",
                                 f"give {name} between {low:g} and {high:g} degrees")

    @classmethod
    def from_dict(cls, data: dict) -> "AlignmentHints":
        """The JSON form, checked by joker_core.protocol.validate_alignment: {"camera":
        {...Camera.to_dict()}, "eyes": [[x, y], [x, y]], "azimuth_deg": a, "elevation_deg":
        e, "fov_deg": f}, every key optional."""
        data = validate_alignment(data, "alignment")
        eyes = data.get("eyes")
        camera = data.get("camera")
        return cls(camera=None if camera is None else Camera.from_dict(camera),
                   eyes=None if eyes is None else tuple((x, y) for x, y in eyes),
                   **{name: data[name] for name in ALIGNMENT_RANGES if name in data})


# Face proportions in units of the interocular distance (eye centre to eye centre), measured
# on frontal portraits: how far the face reaches from the eyes' midpoint.
FACE_HALF_WIDTH = 1.05
FACE_ABOVE_EYES = 1.3   # to the hairline
FACE_BELOW_EYES = 1.65  # to the chin


@dataclass(frozen=True)
class FaceEllipse:
    """Where the photo shows the face, so that colours of the neck, collar or background
    are not painted onto a rig whose proportions differ from the person's."""

    centre: np.ndarray  # pixels
    half_axes: np.ndarray  # (across, along) the face, pixels
    roll: float  # radians: the face's tilt in the image (x right, y down)

    @classmethod
    def from_eyes(cls, eyes: np.ndarray) -> "FaceEllipse":
        left, right = eyes
        across = right - left
        interocular = float(np.linalg.norm(across))
        down = np.array([-across[1], across[0]]) / interocular  # across turned 90 degrees, image y down
        centre = (left + right) / 2 + down * interocular * (FACE_BELOW_EYES - FACE_ABOVE_EYES) / 2
        half_axes = interocular * np.array([FACE_HALF_WIDTH, (FACE_BELOW_EYES + FACE_ABOVE_EYES) / 2])
        return cls(centre, half_axes, math.atan2(across[1], across[0]))

    def contains(self, pixels: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.roll), math.sin(self.roll)
        offset = np.asarray(pixels, dtype=np.float64) - self.centre
        local = offset @ np.array([[c, -s], [s, c]])  # into the face's (across, along) axes
        return ((local / self.half_axes) ** 2).sum(1) <= 1.0


@dataclass(frozen=True)
class Alignment:
    camera: Camera
    detection: FaceDetection | None  # None when the alignment was given explicitly
    residual_px: float               # RMS distance of fitted landmarks to their targets
    face: FaceEllipse | None = None  # where the photo shows the face; None: trust the camera


def align_photo(photo: np.ndarray, rig: dict[str, np.ndarray],
                hints: AlignmentHints = AlignmentHints()) -> Alignment:
    """The camera that sees the rig's features (`rig_landmarks` of its neutral head,
    FLAME frame) as the photo shows the person's."""
    height, width = photo.shape[:2]
    if hints.camera is not None:
        if (hints.camera.width, hints.camera.height) != (width, height):
            raise JokerError(f"the photo camera is {hints.camera.width} x {hints.camera.height} px "
                             f"but the photo is {width} x {height} px",
                             "give the camera the photo's own size")
        return Alignment(hints.camera, None, 0.0)
    if hints.eyes is not None:
        detection = None
        targets = {"eyes": _checked_eye_pixels(hints.eyes, width, height)}
    else:
        detection = detect_face(photo)
        targets = feature_targets(detection)
    points, pixels, weights = _correspondences(rig, targets, hints)
    camera, residual = fit_camera(points, pixels, weights, width, height, hints)
    return Alignment(camera, detection, residual, FaceEllipse.from_eyes(targets["eyes"]))


def detect_face(photo: np.ndarray, landmark_model: str = DEFAULT_LANDMARK_MODEL) -> FaceDetection:
    """The largest frontal face, its landmarks, and its eye centres from them."""
    landmarks = detect_landmarks(photo, landmark_model)
    return FaceDetection(landmarks.box, eye_centres(landmarks), landmarks)


def feature_targets(detection: FaceDetection) -> dict[str, np.ndarray]:
    """Image points of the facial features: detected eyes, else the box's typical ones."""
    x, y, w, h = detection.box
    box_eyes = np.array([[x + (0.5 - BOX_EYE_SPREAD) * w, y + BOX_EYE_HEIGHT * h],
                         [x + (0.5 + BOX_EYE_SPREAD) * w, y + BOX_EYE_HEIGHT * h]])
    eyes = detection.eyes if detection.eyes is not None else box_eyes
    mouth = np.array([x + 0.5 * w, y + BOX_MOUTH_HEIGHT * h])
    if detection.landmarks is not None and detection.landmarks.model == "68":
        mouth = detection.landmarks.subset(MOUTH_CORNERS).mean(0)
    return {"eyes": eyes, "mouth": mouth}


def rig_landmarks(head: HeadModel, vertices: np.ndarray) -> dict[str, np.ndarray]:
    """3D feature points of the rig: eyes (landmarks, else FLAME's eye joints, which every
    FLAME file has) and the mouth centre when the head names its corners."""
    vertices = np.asarray(vertices, dtype=np.float64)
    names = head.landmarks
    if "eye_left" in names and "eye_right" in names:
        eyes = vertices[[names["eye_left"], names["eye_right"]]]
    else:
        joints = head.J_regressor @ vertices
        eyes = joints[[JOINT_NAMES.index("eye_left"), JOINT_NAMES.index("eye_right")]]
    landmarks = {"eyes": eyes}
    if "mouth_left" in names and "mouth_right" in names:
        landmarks["mouth"] = vertices[[names["mouth_left"], names["mouth_right"]]].mean(0)
    return landmarks


# Relative trust in each correspondence: the eyes are the surest; the mouth moves with expression.
FEATURE_WEIGHTS = {"eyes": 1.0, "mouth": 0.3}


def _correspondences(rig: dict[str, np.ndarray], targets: dict[str, np.ndarray],
                     hints: AlignmentHints) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Pair eyes by image side: the rig eye that the viewpoint shows further left goes to
    # the image-left eye, whatever a head calls its left and right.
    view = _view_rotation(hints, np.zeros(3))
    order = np.argsort((rig["eyes"] @ view)[:, 0])
    points, pixels, weights = [rig["eyes"][order]], [targets["eyes"]], [np.full(2, FEATURE_WEIGHTS["eyes"])]
    if "mouth" in rig and "mouth" in targets:
        points.append(rig["mouth"][None])
        pixels.append(targets["mouth"][None])
        weights.append(np.array([FEATURE_WEIGHTS["mouth"]]))
    return np.concatenate(points), np.concatenate(pixels), np.concatenate(weights)


def fit_camera(points: np.ndarray, pixels: np.ndarray, weights: np.ndarray, width: int,
               height: int, hints: AlignmentHints = AlignmentHints()) -> tuple[Camera, float]:
    """The camera with the hinted viewpoint and lens whose projection of `points` (N x 3,
    N >= 2) best matches `pixels` (N x 2), and the weighted RMS pixel residual.

    Unknowns: roll about the viewing axis, distance, and the pixel where the points'
    centroid lands. A closed-form 2D similarity (weak perspective) gives the start; a
    least-squares fit with the true projection finishes.
    """
    focal = 0.5 * max(width, height) / math.tan(math.radians(hints.fov_deg) / 2.0)
    centroid = np.average(points, axis=0, weights=weights)
    view = _view_rotation(hints, centroid)
    local = (points - centroid) @ view                       # in the unrolled camera's axes
    flat = np.stack([local[:, 0], -local[:, 1]], axis=1)     # image-like: x right, y down
    scale, roll, shift = similarity_2d(flat, pixels, weights)

    def camera_for(params: np.ndarray) -> Camera:
        roll, log_distance, u, v = params
        distance = math.exp(log_distance)
        c, s = math.cos(roll), math.sin(roll)
        rolled = view @ np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
        # The centroid sits at (u, v) in the image and `distance` in front of the camera.
        offset = np.array([-(u - width / 2.0) / focal, (v - height / 2.0) / focal, 1.0]) * distance
        c2w = np.eye(4)
        c2w[:3, :3], c2w[:3, 3] = rolled, centroid + rolled @ offset
        return Camera(c2w, focal, focal, width / 2.0, height / 2.0, width, height)

    def residuals(params: np.ndarray) -> np.ndarray:
        projected, _ = camera_for(params).project(points)
        return ((projected - pixels) * np.sqrt(weights)[:, None]).ravel()

    # Rolling the camera by r turns its image by r in image axes (x right, y down).
    start = np.array([roll, math.log(focal / scale), *shift])
    fit = least_squares(residuals, start)
    rms = float(np.sqrt((fit.fun ** 2).sum() / weights.sum()))
    return camera_for(fit.x), rms


def similarity_2d(source: np.ndarray, target: np.ndarray,
                  weights: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Weighted least-squares similarity target ~ scale * R(angle) @ source + shift, where
    source and target share the origin convention; returns (scale, angle, the image of
    source's weighted centroid)."""
    w = weights / weights.sum()
    source_centred = source - w @ source
    target_mean = w @ target
    target_centred = target - target_mean
    # Complex numbers make the 2D Procrustes problem one line: z_t ~ a * z_s.
    zs = source_centred[:, 0] + 1j * source_centred[:, 1]
    zt = target_centred[:, 0] + 1j * target_centred[:, 1]
    a = (w * np.conj(zs) * zt).sum() / (w * np.abs(zs) ** 2).sum()
    if abs(a) == 0.0 or not np.isfinite(a):
        raise JokerError("the face features coincide, so no alignment can be fitted",
                         EXPLICIT_ALIGNMENT_FIX)
    return float(abs(a)), float(np.angle(a)), target_mean


def _view_rotation(hints: AlignmentHints, target: np.ndarray) -> np.ndarray:
    eye = orbit_position(hints.azimuth_deg, hints.elevation_deg, 1.0, target)
    return look_at(eye, target)[:3, :3]


def _checked_eye_pixels(eyes, width: int, height: int) -> np.ndarray:
    pixels = np.asarray(eyes, dtype=np.float64)
    if pixels.shape != (2, 2) or not np.isfinite(pixels).all():
        raise JokerError("eye pixels must be two (x, y) points", "give XL YL XR YR in photo pixels")
    if (pixels < 0).any() or (pixels[:, 0] > width).any() or (pixels[:, 1] > height).any():
        raise JokerError(f"eye pixels {pixels.tolist()} lie outside the {width} x {height} photo",
                         "give eye positions inside the photo, in pixels from its top-left corner")
    if np.linalg.norm(pixels[1] - pixels[0]) < 4:
        raise JokerError("the two eye pixels are (almost) the same point",
                         "give the centres of both eyes")
    return pixels[np.argsort(pixels[:, 0])]

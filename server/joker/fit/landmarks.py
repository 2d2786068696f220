"""Face landmarks from a photo with dlib: its HOG face detector and a shape predictor.

Two landmark models ship in `face_recognition_models` (MIT package):
- "68": the iBUG 300-W layout (jaw, brows, nose, eyes, lips). Trained on 300-W, whose
  licence excludes commercial use.
- "5": the eye corners and the base of the nose, trained on dlib's own CC0 data; a
  commercial-clean path with a coarser fit (no mouth, no jaw).
Both report their points in the 68-point numbering (`Landmarks.indices`), so everything
downstream (embedding, fit, crop) speaks one layout.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from joker_core.errors import JokerError

log = logging.getLogger(__name__)

MIN_FACE_SIDE = 80      # px: below this the landmarks are too coarse to fit a head to
DETECTION_SIDE = 1024   # px: detection runs on the photo downscaled to this longer side
LANDMARK_MODELS = ("68", "5")
DEFAULT_LANDMARK_MODEL = "68"

# The 5-point model's points in the 68-point numbering: the subject's left eye (image
# right) outer and inner corner, the right eye's outer and inner corner, the nose base.
FIVE_POINT_INDICES = np.array([45, 42, 36, 39, 33])

RIGHT_EYE = np.arange(36, 42)  # the subject's right eye: image left in a frontal photo
LEFT_EYE = np.arange(42, 48)

EXPLICIT_ALIGNMENT_FIX = ("align the photo explicitly: give its camera (e.g. from aligning it to "
                          "the rig in Blender) or the pixel centres of both eyes")

_MODEL_FILES = {"68": "shape_predictor_68_face_landmarks.dat", "5": "shape_predictor_5_face_landmarks.dat",
                "descriptor": "dlib_face_recognition_resnet_model_v1.dat"}


@dataclass(frozen=True)
class Landmarks:
    """Detected points of one face, in photo pixels (x right, y down)."""

    points: np.ndarray    # K x 2
    indices: np.ndarray   # K: each point's number in the 68-point layout
    box: np.ndarray       # x, y, width, height of the detected face
    model: str            # "68" or "5"

    def subset(self, wanted: np.ndarray) -> np.ndarray:
        """The points numbered `wanted` (68-layout), in that order; all must be present."""
        where = {int(i): k for k, i in enumerate(self.indices)}
        return self.points[[where[int(i)] for i in wanted]]

    def to_dict(self) -> dict:
        return {"points": self.points.tolist(), "indices": self.indices.tolist(),
                "box": self.box.tolist(), "model": self.model}

    @classmethod
    def from_dict(cls, data: dict) -> "Landmarks":
        return cls(np.asarray(data["points"], float), np.asarray(data["indices"], int),
                   np.asarray(data["box"], float), str(data["model"]))


def eye_centres(landmarks: Landmarks) -> np.ndarray:
    """2 x 2 eye centres, image-left first: the mean of each eye's points (corners for
    the 5-point model)."""
    eyes = [RIGHT_EYE, LEFT_EYE] if landmarks.model == "68" else [RIGHT_EYE[[0, 3]], LEFT_EYE[[0, 3]]]
    return np.stack([landmarks.subset(eye).mean(0) for eye in eyes])


def check_landmark_model(name: str) -> str:
    if name not in LANDMARK_MODELS:
        raise JokerError(f"unknown landmark model '{name}'",
                         "use '68' (default; iBUG 300-W data, non-commercial) or '5' (CC0 data, coarser fit)")
    return name


def detect_landmarks(photo: np.ndarray, model: str = DEFAULT_LANDMARK_MODEL) -> Landmarks:
    """Landmarks of the largest face in an H x W x 3 uint8 RGB photo."""
    check_landmark_model(model)
    photo = np.ascontiguousarray(photo)  # dlib reads contiguous uint8 RGB only
    box = detect_face(photo)
    shape = _predictor(model)(photo, _rectangle(box))
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64) + 0.5  # pixel centres
    indices = np.arange(68) if model == "68" else FIVE_POINT_INDICES
    return Landmarks(points, indices, box, model)


def detect_face(photo: np.ndarray) -> np.ndarray:
    """The largest frontal face's box (x, y, width, height in photo pixels)."""
    import dlib

    scale = min(1.0, DETECTION_SIDE / max(photo.shape[:2]))
    small = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else photo
    detector = _detector()
    rectangles = detector(small, 0)
    if len(rectangles) == 0:  # a second, finer pass finds faces too small to use, to say so
        rectangles = detector(small, 1)
    if len(rectangles) == 0:
        raise JokerError("no face was found in the photo (it needs a frontal, upright face)",
                         EXPLICIT_ALIGNMENT_FIX)
    boxes = np.array([(r.left(), r.top(), r.width(), r.height()) for r in rectangles], float) / scale
    largest = boxes[np.argmax(boxes[:, 2] * boxes[:, 3])]
    if len(boxes) > 1:
        log.warning("the photo shows %d faces; using the largest (%.0f px wide at %.0f, %.0f)",
                    len(boxes), largest[2], largest[0], largest[1])
    if largest[2] < MIN_FACE_SIDE:
        raise JokerError(f"the face in the photo is only {largest[2]:.0f} px wide",
                         f"use a photo where the face is at least {MIN_FACE_SIDE} px wide")
    return largest


def face_descriptor(photo: np.ndarray, landmarks: Landmarks | None = None) -> np.ndarray:
    """dlib's 128-D face descriptor of the largest face (distance < 0.6: the same person)."""
    import dlib

    photo = np.ascontiguousarray(photo)
    landmarks = landmarks or detect_landmarks(photo, "5")
    rectangle = _rectangle(landmarks.box)
    shape = _predictor("5")(photo, rectangle)  # the network is aligned with the 5-point model
    return np.asarray(_descriptor_net().compute_face_descriptor(photo, shape), dtype=np.float64)


def _rectangle(box: np.ndarray):
    import dlib

    x, y, w, h = (int(round(v)) for v in box)
    return dlib.rectangle(x, y, x + w, y + h)


def model_file(name: str) -> Path:
    """A model file of the `face_recognition_models` package, found without importing it
    (its __init__ needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    path = None if spec is None else Path(next(iter(spec.submodule_search_locations))) / "models" / _MODEL_FILES[name]
    if path is None or not path.is_file():
        raise JokerError("dlib's face models (the face_recognition_models package) are not installed",
                         "pip install face_recognition_models==0.3.0 (or align the photo explicitly)")
    return path


@lru_cache(maxsize=None)
def _detector():
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=None)
def _predictor(model: str):
    import dlib

    return dlib.shape_predictor(str(model_file(model)))


@lru_cache(maxsize=None)
def _descriptor_net():
    import dlib

    return dlib.face_recognition_model_v1(str(model_file("descriptor")))

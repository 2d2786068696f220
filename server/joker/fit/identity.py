"""The identity measure: dlib's face-descriptor distance between the reference photo and a
frontal render of a result (dlib calls < 0.6 the same person)."""

from __future__ import annotations

import numpy as np

from joker_core.cameras import Camera, look_at
from joker_core.errors import JokerError

from .landmarks import Landmarks, face_descriptor

SAME_PERSON = 0.6


def identity_distance(photo: np.ndarray, render: np.ndarray, photo_landmarks: Landmarks | None = None) -> float:
    """Descriptor distance between the largest faces of two H x W x 3 uint8 images. The
    render goes first: where it shows no face, that costs one small detection, not the
    photo's descriptor. `photo_landmarks`: the photo's face, when already found (the fit's)."""
    rendered = face_descriptor(render)
    return float(np.linalg.norm(face_descriptor(photo, photo_landmarks) - rendered))


def render_identity_distance(photo: np.ndarray, render: np.ndarray,
                             photo_landmarks: Landmarks | None = None) -> float | None:
    """identity_distance of a result's render, or None where dlib finds no face in either
    (a result too coarse to read as a face, a photo aligned by hand)."""
    try:
        return identity_distance(photo, render, photo_landmarks)
    except JokerError:
        return None


def frontal_camera(vertices: np.ndarray, size: int = 512, fov_deg: float = 20.0) -> Camera:
    """A camera in front of a head (FLAME frame, face along +z) that frames its front half."""
    front = vertices[vertices[:, 2] > np.median(vertices[:, 2])]
    centre = (front.min(0) + front.max(0)) / 2
    extent = float(np.ptp(front[:, :2], axis=0).max())
    distance = 0.55 * extent / np.tan(np.radians(fov_deg) / 2)
    return Camera.from_fov(look_at(centre + np.array([0.0, 0.0, distance]), centre), fov_deg, size, size)


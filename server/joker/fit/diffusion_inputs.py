"""What the diffusion prior sees, prepared as the authors prepared its training data
(design.md §2, joker.fit.crop): the reference photo as the published crop around the
face's five points, and every training view framed so that the rig's five points land
where that crop puts a face's.

The five points come from the 68 detected landmarks, as in the authors' preprocessing;
with the 5-point model (no mouth) they come from the fitted rig seen through the photo's
fitted camera. Without a face to crop around, the photo's central square is used, said."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
from PIL import Image

from joker_core.cameras import Camera
from joker_core.errors import JokerError
from joker_core.head_model import HeadModel
from joker_core.lbs import numpy_rig, pose
from joker_core.rig_params import RigParams

from .crop import OUTPUT, five_points, framed_camera, published_crop
from .landmarks import detect_landmarks
from .solve import ReferenceFit, cached_embedding, fitted_vertices

log = logging.getLogger(__name__)


def reference_crop(photo: np.ndarray, fit: ReferenceFit | None, model: HeadModel, size: int = OUTPUT) -> np.ndarray:
    """The size x size reference the diffusion prior takes: the published crop of `photo`."""
    try:
        points = photo_five_points(photo, fit, model)
    except JokerError as error:
        log.warning("the reference is not cropped as the prior was trained (%s): its central square is used",
                    error.problem)
        side = min(photo.shape[:2])
        top, left = (photo.shape[0] - side) // 2, (photo.shape[1] - side) // 2
        crop = photo[top:top + side, left:left + side]
    else:
        crop, _ = published_crop(photo, points)
    if crop.shape[0] != size:
        crop = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.LANCZOS))
    return crop


def framed_views(cameras: Sequence[Camera], model: HeadModel, params: RigParams) -> list[Camera]:
    """`cameras` with intrinsics that frame the rig posed by `params` as the published crop
    frames a face (each at its own size). Unchanged, and said, for a model without a
    landmark embedding."""
    rig_points = _rig_68(model, pose(numpy_rig(model), params).vertices)
    if rig_points is None:
        log.warning("head model '%s' has no landmark embedding: the views keep the rig's framing, not the "
                    "prior's training framing", model.name)
        return list(cameras)
    five = five_points(rig_points)
    # Framed at the crop's own size: the authors' integer truncations are in its pixels.
    return [_resized(framed_camera(_resized(camera, OUTPUT), five), camera.width) for camera in cameras]


def photo_five_points(photo: np.ndarray, fit: ReferenceFit | None, model: HeadModel) -> np.ndarray:
    """The crop's five points in the photo: detected where the landmark model has them, the
    rest (the 5-point model's nose tip and mouth) from the fitted rig through its camera."""
    landmarks = fit.landmarks if fit is not None and fit.landmarks is not None else detect_landmarks(photo)
    points = np.full((68, 2), np.nan)
    if landmarks.model != "68":
        rig_points = _rig_68(model, fitted_vertices(model, fit)) if fit is not None else None
        if rig_points is None:
            raise JokerError("the 5-point landmarks have no mouth corners and there is no fitted rig to give them",
                             "use the 68-point landmark model")
        known = ~np.isnan(rig_points[:, 0])
        points[known] = fit.camera.project(rig_points[known])[0]
    points[landmarks.indices] = landmarks.points
    return five_points(points)


def _rig_68(model: HeadModel, vertices: np.ndarray) -> np.ndarray | None:
    """68 x 3 landmark positions on posed `vertices` (NaN where the embedding has none)."""
    embedding = cached_embedding(model, None)
    if embedding is None:
        return None
    points = np.full((68, 3), np.nan)
    points[embedding.indices] = embedding.points(vertices, model.faces)
    return points


def _resized(camera: Camera, size: int) -> Camera:
    """A square camera at size x size pixels (the same view)."""
    k = size / camera.width
    return Camera(camera.c2w, camera.fx * k, camera.fy * k, camera.cx * k, camera.cy * k, size, size)

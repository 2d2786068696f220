"""The published crop against the authors' procedure restated step by step (whole-photo
BICUBIC resize, 1024 square with black outside, centre 700, LANCZOS to 512), and the view
framing against the template."""

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from joker.fit.crop import (CENTRE_CROP, OUTPUT, RESCALE, TARGET, TEMPLATE, crop_frame, five_points,
                            framed_camera, published_crop, template_pixels)
from joker.fit.embedding import demo_head_embedding
from joker.fit.landmarks import detect_landmarks
from joker_core.cameras import Camera, look_at
from joker_core.demo_head import load_demo_head


def authors_procedure(photo: np.ndarray, points: np.ndarray) -> np.ndarray:
    height, width = photo.shape[:2]
    up = np.stack([points[:, 0], height - 1 - points[:, 1]], 1)
    a = np.zeros((10, 8))
    a[0::2, :3], a[0::2, 3], a[1::2, 4:7], a[1::2, 7] = TEMPLATE, 1, TEMPLATE, 1
    k = np.linalg.lstsq(a, up.reshape(-1), rcond=None)[0]
    s = RESCALE / ((np.linalg.norm(k[:3]) + np.linalg.norm(k[4:7])) / 2)
    w, h = int(width * s), int(height * s)
    left = int(w / 2 - TARGET / 2 + (k[3] - width / 2) * s)
    top = int(h / 2 - TARGET / 2 + (height / 2 - k[7]) * s)
    big = Image.fromarray(photo).resize((w, h), Image.BICUBIC).crop((left, top, left + TARGET, top + TARGET))
    margin = (TARGET - CENTRE_CROP) // 2
    centre = big.crop((margin, margin, margin + CENTRE_CROP, margin + CENTRE_CROP))
    return np.asarray(centre.resize((OUTPUT, OUTPUT), Image.LANCZOS))


def shift_between(a: np.ndarray, b: np.ndarray) -> float:
    gray = [cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float64) for x in (a, b)]
    (dx, dy), _ = cv2.phaseCorrelate(*gray)
    return float(np.hypot(dx, dy))


PHOTOS = {  # any size: square, landscape cut, portrait cut (the crop leaves the photo), large
    "square": lambda p: p,
    "landscape": lambda p: p[:300],
    "portrait": lambda p: p[:, 120:330],
    "large": lambda p: cv2.resize(p, (1300, 1300), interpolation=cv2.INTER_CUBIC)[:, :1100],
}


@pytest.mark.parametrize("kind", list(PHOTOS))
def test_the_crop_matches_the_authors_procedure_within_a_pixel(kind):
    photo = np.ascontiguousarray(PHOTOS[kind](skimage.data.astronaut()))
    points = five_points(detect_landmarks(photo).points)
    ours, frame = published_crop(photo, points)
    theirs = authors_procedure(photo, points)
    assert ours.shape == theirs.shape == (512, 512, 3)
    assert shift_between(ours, theirs) < 1.0
    inside = (theirs.sum(-1) > 0) & (ours.sum(-1) > 0)
    assert np.abs(ours.astype(int) - theirs.astype(int))[inside].mean() < 4.0
    # Black where the crop leaves the photo, in both.
    assert np.array_equal(ours.sum(-1) == 0, theirs.sum(-1) == 0) or \
        np.mean((ours.sum(-1) == 0) != (theirs.sum(-1) == 0)) < 0.01
    # The eyes land near where the template puts them (her proportions are not BFM's mean).
    assert np.abs(frame.to_crop(points[:2]) - template_pixels()[:2]).max() < 25.0


def test_views_are_framed_as_the_prior_saw_its_training_faces():
    head = load_demo_head()
    embedding = demo_head_embedding(head)
    points_68 = np.full((68, 3), np.nan)
    points_68[embedding.indices] = embedding.points(head.v_template, head.faces)
    rig_five = five_points(points_68)
    errors = []
    for azimuth in (-30.0, 0.0, 30.0):
        eye = np.array([np.sin(np.radians(azimuth)), 0.0, np.cos(np.radians(azimuth))]) * 0.7
        camera = framed_camera(Camera.from_fov(look_at(eye, (0, 0, 0.02)), 30.0, 512, 512), rig_five)
        pixels, _ = camera.project(rig_five)
        errors.append(np.abs(pixels - template_pixels()).max())
        # Framing again changes nothing: the view already is the published crop of itself.
        again = framed_camera(camera, rig_five)
        assert again.fx == pytest.approx(camera.fx, rel=0.01) and abs(again.cx - camera.cx) < 2.0
    # Seen from the front, the rig's five points sit where the template's do, up to the
    # rig's own proportions (6.4 px at 512 when written); turned views keep the authors'
    # scale and centre, not the frontal positions.
    assert errors[1] < 10.0, errors

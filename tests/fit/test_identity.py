"""The identity measure every job records (metrics.json `identity_distance`): dlib's
descriptor distance between the photo and a render of the result."""

import numpy as np
import pytest
import skimage.data

from joker.fit.identity import SAME_PERSON, render_identity_distance
from joker.fit.landmarks import detect_landmarks
from joker_core.demo_head import load_demo_head
from joker_core.rig_params import RigParams

from .synthetic import synthetic_photo


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def test_the_same_person_reads_close_and_another_far(astronaut):
    landmarks = detect_landmarks(astronaut)
    # Her own face, mirrored and re-framed as a head render would be: the same person.
    x, y, w, h = landmarks.box.astype(int)
    reframed = np.ascontiguousarray(astronaut[max(0, y - h // 2): y + 2 * h, max(0, x - w // 2): x + 2 * w, :][:, ::-1])
    same = render_identity_distance(astronaut, reframed, landmarks)
    other = render_identity_distance(astronaut, synthetic_photo(load_demo_head(), RigParams(), distance=0.5).image)
    assert same < 0.3 < SAME_PERSON < other  # measured: 0.18 and 0.68


def test_a_render_without_a_face_is_not_measured(astronaut):
    blank = np.full((256, 256, 3), 255, np.uint8)
    assert render_identity_distance(astronaut, blank) is None

import logging

import cv2
import numpy as np
import pytest
import skimage.data

from joker.fit.landmarks import FIVE_POINT_INDICES, check_landmark_model, detect_landmarks, eye_centres
from joker_core.errors import JokerError


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


def test_68_points_land_on_her_face(astronaut):
    found = detect_landmarks(astronaut)
    x, y, w, h = found.box
    assert found.points.shape == (68, 2) and 150 < x < 200 and 60 < y < 100 and w >= 80
    left, right = eye_centres(found)
    assert x < left[0] < x + w / 2 < right[0] < x + w and abs(left[1] - right[1]) < 8
    nose, chin = found.points[30], found.points[8]
    assert left[1] < nose[1] < found.points[[48, 54], 1].mean() < chin[1]


def test_the_five_point_model_speaks_the_68_layout(astronaut):
    full, five = detect_landmarks(astronaut, "68"), detect_landmarks(astronaut, "5")
    assert list(five.indices) == list(FIVE_POINT_INDICES)
    # Eye corners agree between the models within a few pixels (the nose base less so).
    assert np.abs(five.points[:4] - full.subset(FIVE_POINT_INDICES[:4])).max() < 4.0
    assert np.abs(eye_centres(five) - eye_centres(full)).max() < 4.0


def test_several_faces_take_the_largest_and_say_so(astronaut, caplog):
    face = astronaut[40:240, 120:320]
    group = np.concatenate([face, cv2.resize(face, (150, 150))[np.r_[0:150, np.full(50, 149)]]], axis=1)
    with caplog.at_level(logging.WARNING, logger="joker.fit.landmarks"):
        found = detect_landmarks(group)
    assert "2 faces" in caplog.text and found.box[0] < 200


def test_bad_input_gets_one_line_errors(astronaut):
    with pytest.raises(JokerError, match="no face was found") as error:
        detect_landmarks(skimage.data.coffee())
    assert "eyes" in error.value.fix and "camera" in error.value.fix
    small = cv2.resize(astronaut, (256, 256), interpolation=cv2.INTER_AREA)
    with pytest.raises(JokerError, match="at least 80 px wide"):
        detect_landmarks(small)
    with pytest.raises(JokerError, match="unknown landmark model"):
        check_landmark_model("81")
    assert "\n" not in str(error.value)

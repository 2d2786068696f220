import io
import math

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image

from joker.prior.projection.alignment import (AlignmentHints, FaceDetection, FaceEllipse, align_photo,
                                              detect_face, feature_targets, fit_camera, similarity_2d)
from joker.prior.projection.photo import load_photo
from joker_core.cameras import Camera, look_at
from joker_core.errors import JokerError

from .synthetic import ellipsoid_landmarks


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def aligned(portrait):
    return align_photo(portrait, ellipsoid_landmarks())


def eye_pixels(camera: Camera) -> np.ndarray:
    pixels, _ = camera.project(ellipsoid_landmarks()["eyes"])
    return pixels[np.argsort(pixels[:, 0])]


def test_astronaut_face_and_both_eyes_are_found(aligned):
    detection = aligned.detection
    x, y, w, h = detection.box
    assert 150 < x < 200 and 50 < y < 90 and 80 < w < 110  # her face, not the flag or the helmet
    assert detection.eyes is not None
    left, right = detection.eyes
    assert x < left[0] < x + w / 2 < right[0] < x + w
    assert y < left[1] < y + h / 2 and abs(left[1] - right[1]) < 0.1 * w


def test_rig_eyes_land_on_the_detected_eyes(aligned):
    distance = np.linalg.norm(eye_pixels(aligned.camera) - aligned.detection.eyes, axis=1)
    interocular = np.linalg.norm(aligned.detection.eyes[1] - aligned.detection.eyes[0])
    assert distance.max() < 0.08 * interocular  # ~3.5 px here
    mouth, _ = aligned.camera.project(ellipsoid_landmarks()["mouth"][None])
    x, y, w, h = aligned.detection.box
    assert x < mouth[0, 0] < x + w and y + h / 2 < mouth[0, 1] < y + h


def test_camera_looks_at_the_face_from_the_front(aligned):
    camera = aligned.camera
    assert (camera.width, camera.height) == (512, 512)
    view_direction = -camera.c2w[:3, 2]
    assert view_direction[2] < -0.99  # the face looks along +z; the camera looks back at it
    assert 0.5 < camera.c2w[2, 3] < 5.0  # a portrait distance in metres


def _reencode(image: Image.Image, **options) -> np.ndarray:
    buffer = io.BytesIO()
    image.save(buffer, "PNG" if "exif" not in options else "JPEG", **options)
    return load_photo(buffer.getvalue())


def test_grayscale_rgba_and_exif_rotated_photos_align_like_the_upright_rgb(portrait, aligned):
    exif = Image.Exif()
    exif[0x0112] = 6
    variants = {
        "grayscale": _reencode(Image.fromarray(portrait).convert("L")),
        "rgba": _reencode(Image.fromarray(np.dstack([portrait, np.full(portrait.shape[:2], 255, np.uint8)]))),
        "exif": _reencode(Image.fromarray(np.rot90(portrait).copy()), exif=exif, quality=95),
    }
    reference = eye_pixels(aligned.camera)
    for name, photo in variants.items():
        camera = align_photo(photo, ellipsoid_landmarks()).camera
        assert np.abs(eye_pixels(camera) - reference).max() < 2.0, name


def test_no_face_says_so_and_names_the_explicit_alignment():
    with pytest.raises(JokerError) as error:
        align_photo(skimage.data.coffee(), ellipsoid_landmarks())
    assert "no face was found" in str(error.value)
    assert "eyes" in error.value.fix and "camera" in error.value.fix


def test_a_face_too_small_is_refused(portrait):
    small = cv2.resize(portrait, (256, 256), interpolation=cv2.INTER_AREA)
    with pytest.raises(JokerError, match="at least 80 px wide"):
        detect_face(small)


def test_explicit_eye_pixels_replace_the_detector():
    photo = skimage.data.coffee()  # no face: the detector would fail
    eyes = ((250.0, 180.0), (330.0, 190.0))
    alignment = align_photo(photo, ellipsoid_landmarks(), AlignmentHints(eyes=eyes))
    assert alignment.detection is None
    assert np.abs(eye_pixels(alignment.camera) - np.array(eyes)).max() < 0.5
    with pytest.raises(JokerError, match="outside"):
        align_photo(photo, ellipsoid_landmarks(), AlignmentHints(eyes=((-5, 0), (30, 30))))


def test_explicit_camera_wins_and_must_fit_the_photo(portrait):
    camera = Camera.from_fov(look_at((0, 0, 1.2), (0, 0, 0)), 20, 512, 512)
    assert align_photo(portrait, ellipsoid_landmarks(), AlignmentHints(camera=camera)).camera is camera
    wrong = Camera.from_fov(look_at((0, 0, 1.2), (0, 0, 0)), 20, 640, 480)
    with pytest.raises(JokerError, match="photo's own size"):
        align_photo(portrait, ellipsoid_landmarks(), AlignmentHints(camera=wrong))


@pytest.mark.parametrize("roll", [0.0, 0.35, -0.6])
def test_fit_recovers_a_rolled_camera_exactly(roll):
    points = np.array([[-0.031, 0.03, 0.08], [0.031, 0.03, 0.08]])
    c2w = look_at((0.0, 0.0, 1.4), (0.0, 0.0, 0.0))
    c, s = math.cos(roll), math.sin(roll)
    c2w[:3, :3] = c2w[:3, :3] @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    truth = Camera.from_fov(c2w, 25, 640, 480)
    pixels, _ = truth.project(points)
    camera, residual = fit_camera(points, pixels, np.ones(2), 640, 480)
    assert residual < 1e-3
    probe = np.array([[0.0, -0.05, 0.09], [0.05, 0.08, 0.02]])  # points not used in the fit
    assert np.abs(camera.project(probe)[0] - truth.project(probe)[0]).max() < 0.5


def test_similarity_2d_solves_a_known_transform():
    rng = np.random.default_rng(3)
    source = rng.normal(size=(5, 2))
    angle, scale, shift = 0.7, 2.5, np.array([10.0, -4.0])
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    target = scale * source @ rotation.T + shift
    got_scale, got_angle, image_of_centroid = similarity_2d(source, target, np.ones(5))
    assert got_scale == pytest.approx(scale) and got_angle == pytest.approx(angle)
    assert np.allclose(image_of_centroid, target.mean(0))


def test_face_ellipse_covers_her_face_but_not_collar_or_background(aligned):
    face = aligned.face
    eyes = aligned.detection.eyes
    x, y, w, h = aligned.detection.box
    inside = np.vstack([eyes, [[x + w / 2, y + 0.8 * h]], [[x + w / 2, y + 0.35 * h]]])  # eyes, mouth, nose
    assert face.contains(inside).all()
    collar, flag, shuttle = (222.0, 200.0), (60.0, 100.0), (420.0, 120.0)
    assert not face.contains(np.array([collar, flag, shuttle])).any()


def test_face_ellipse_turns_with_the_eyes():
    level = FaceEllipse.from_eyes(np.array([[100.0, 100.0], [140.0, 100.0]]))
    angle = np.radians(30)
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    pivot = np.array([120.0, 100.0])
    tilted = FaceEllipse.from_eyes((np.array([[100.0, 100.0], [140.0, 100.0]]) - pivot) @ turn.T + pivot)
    probes = np.random.default_rng(0).uniform(0, 240, size=(2000, 2))
    assert level.contains(probes).sum() > 100
    assert np.array_equal(level.contains(probes), tilted.contains((probes - pivot) @ turn.T + pivot))
    chin = pivot + np.array([0.0, 40.0 * 1.6])
    assert level.contains(chin[None])[0] and not level.contains((chin + [0, 10])[None])[0]


def test_without_detected_eyes_the_box_proportions_stand_in():
    detection = FaceDetection(np.array([100.0, 50.0, 200.0, 200.0]), None)
    targets = feature_targets(detection)
    assert np.allclose(targets["eyes"], [[151.0, 96.0], [249.0, 96.0]])
    assert np.allclose(targets["mouth"], [200.0, 180.0])


def test_a_viewpoint_hint_turns_the_camera_around_the_head(portrait):
    hints = AlignmentHints(azimuth_deg=25.0, elevation_deg=-10.0)
    camera = align_photo(portrait, ellipsoid_landmarks(), hints).camera
    backward = camera.c2w[:3, 2]  # the camera's +z points from the head toward the camera
    assert np.degrees(np.arctan2(backward[0], backward[2])) == pytest.approx(25.0, abs=1.0)
    assert np.degrees(np.arcsin(backward[1])) == pytest.approx(-10.0, abs=1.0)
    # ... and the eyes still land on the detected ones.
    detection = detect_face(portrait)
    assert np.abs(eye_pixels(camera) - detection.eyes).max() < 4.0


def test_hints_from_json_round_trip_and_refuse_nonsense():
    camera = Camera.from_fov(look_at((0, 0, 1.2), (0, 0, 0)), 20, 512, 512)
    hints = AlignmentHints.from_dict({"camera": camera.to_dict(), "eyes": [[200, 100], [246, 103]],
                                      "azimuth_deg": 10, "fov_deg": 30})
    assert np.allclose(hints.camera.c2w, camera.c2w) and hints.eyes == ((200.0, 100.0), (246.0, 103.0))
    assert (hints.azimuth_deg, hints.elevation_deg, hints.fov_deg) == (10.0, 0.0, 30.0)
    with pytest.raises(JokerError, match="alignment.yaw: is not a known field"):
        AlignmentHints.from_dict({"yaw": 3})
    with pytest.raises(JokerError, match=r"alignment.eyes: expected \[\[x, y\], \[x, y\]\]"):
        AlignmentHints.from_dict({"eyes": [[1, 2, 3]]})
    with pytest.raises(JokerError, match="alignment.fov_deg: 0 is out of range"):
        AlignmentHints.from_dict({"fov_deg": 0})
    # The spec and the engine take the same ranges: what one refuses, the other refuses too.
    with pytest.raises(JokerError, match="elevation_deg = 89.5 is out of range"):
        AlignmentHints(elevation_deg=89.5)
    with pytest.raises(JokerError, match="elevation_deg: 89.5 is out of range"):
        AlignmentHints.from_dict({"elevation_deg": 89.5})

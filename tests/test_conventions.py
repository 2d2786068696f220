import numpy as np
import pytest

from joker_core.cameras import Camera, ViewRig, look_at
from joker_core.conventions import (FLAME_TO_BLENDER, decode_normals, encode_normals,
                                    flame_to_blender_points)
from joker_core.errors import JokerError


def test_flame_face_direction_maps_to_blender_minus_y():
    assert np.allclose(flame_to_blender_points([[0, 0, 1]]), [[0, -1, 0]])
    assert np.allclose(flame_to_blender_points([[0, 1, 0]]), [[0, 0, 1]])
    assert np.allclose(FLAME_TO_BLENDER @ FLAME_TO_BLENDER.T, np.eye(4))


def test_normal_encoding_of_a_normal_facing_the_camera_and_background():
    normals = np.zeros((2, 2, 3))
    normals[..., 2] = 1.0
    mask = np.array([[True, False], [True, True]])
    rgb = encode_normals(normals, mask)
    assert rgb.dtype == np.uint8
    assert tuple(rgb[0, 0]) == (128, 128, 255)
    assert tuple(rgb[0, 1]) == (0, 0, 0)
    decoded, decoded_mask = decode_normals(rgb)
    assert (decoded_mask == mask).all()
    assert np.allclose(decoded[mask], [0, 0, 1], atol=0.01)


def test_front_camera_looks_along_minus_z_and_projects_its_target_to_the_centre():
    rig = ViewRig(center=(0.0, 0.02, 0.0), distance=0.5, fov_deg=30, size=64)
    cam = rig.camera(0, 0)
    assert np.allclose(cam.c2w[:3, 3], [0, 0.02, 0.5])
    assert np.allclose(cam.c2w[:3, 2], [0, 0, 1])  # camera +z points back toward the viewer
    pixels, depth = cam.project(np.array([[0.0, 0.02, 0.0], [0.0, 0.1, 0.0]]))
    assert np.allclose(pixels[0], [32, 32]) and depth[0] == pytest.approx(0.5)
    assert pixels[1, 1] < 32  # +y (up) lands higher in the image: origin is top-left


def test_positive_azimuth_moves_the_camera_toward_plus_x():
    cam = ViewRig(distance=1.0).camera(90, 0)
    assert np.allclose(cam.c2w[:3, 3], [1, 0, 0], atol=1e-12)


def test_grid_matches_published_layout_and_round_trips_through_json():
    cams = ViewRig().grid(20, 20)
    assert len(cams) == 400
    back = Camera.from_dict(cams[7].to_dict())
    assert np.allclose(back.c2w, cams[7].c2w) and back.fx == cams[7].fx


def test_malformed_camera_is_refused_with_a_fix():
    with pytest.raises(JokerError, match="Fix:"):
        Camera.from_dict({"c2w": [[1, 0], [0, 1]], "fx": 1, "fy": 1, "cx": 0, "cy": 0,
                          "width": 4, "height": 4})


def test_look_at_straight_down_is_well_defined():
    c2w = look_at((0, 1, 0), (0, 0, 0))
    assert np.isfinite(c2w).all()
    assert np.allclose(np.linalg.det(c2w[:3, :3]), 1.0)

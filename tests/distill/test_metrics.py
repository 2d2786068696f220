import numpy as np
import pytest
import trimesh

from joker.generation.metrics import face_chamfer, head_height, seen_vertices
from joker_core.cameras import ViewRig
from joker_core.demo_head import load_demo_head
from joker_core.framing import head_view_rig


def test_only_the_side_facing_a_camera_is_seen():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    seen = seen_vertices(sphere.vertices, sphere.faces, [ViewRig(distance=0.6, size=128).camera(0.0, 0.0)])
    front, back = sphere.vertices[:, 2] > 0.06, sphere.vertices[:, 2] < -0.01
    assert seen[front].mean() > 0.9 and not seen[back].any()


def test_face_chamfer_is_zero_on_the_rig_and_grows_with_an_offset():
    model = load_demo_head()
    cameras = head_view_rig(model, size=96).grid(3, 2)
    exact = face_chamfer(model.v_template, model, model.v_template, cameras)
    assert exact["face_chamfer_m"] == 0 and exact["face_chamfer_visible_m"] == 0
    shifted = face_chamfer(model.v_template + [0.0, 0.0, 0.005], model, model.v_template, cameras)
    assert 0.001 < shifted["face_chamfer_visible_m"] <= 0.005 + 1e-9
    assert shifted["face_chamfer_visible_percent_of_head_height"] == pytest.approx(
        100 * shifted["face_chamfer_visible_m"] / head_height(model))

"""The bpy.ops.joker.* operators as an artist (or a script) meets them in real Blender:
the add-on enabled through Blender's add-on machinery, errors as one-line reports."""

import json

import numpy as np
import pytest

from blender_runner import ENABLE_ADDON, REPORT, run_blender
from flame_fixtures import write_official_layout_pkl
from joker_core.errors import JokerError
from joker_core.flame_format import load_head_model
from joker_core.presets import get_preset

pytestmark = pytest.mark.blender

OPERATORS = REPORT + ENABLE_ADDON + """
import json
from joker_blender.rig_ops import find_rig
from joker_blender.rig_state import read_params
from joker_blender import model_cache
official_pkl, broken_pkl = sys.argv[-2:]
prefs = bpy.context.preferences.addons["joker_blender"].preferences
out = {}

out["preset_without_rig"] = attempt(bpy.ops.joker.apply_preset, preset="scream")
out["demo"] = attempt(bpy.ops.joker.add_head, use_demo=True)
out["objects_after_demo"] = sorted(o.name for o in bpy.data.objects)

prefs.flame_model_path = official_pkl
out["official"] = attempt(bpy.ops.joker.add_head)
mesh, armature = find_rig(bpy.context)
out["official_rig"] = {"source": armature["joker_rig"], "keys": len(mesh.data.shape_keys.key_blocks),
                       "bones": sorted(b.name for b in armature.data.bones)}

before = (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.armatures))
prefs.flame_model_path = broken_pkl
out["broken"] = attempt(bpy.ops.joker.add_head)
out["nothing_added"] = before == (len(bpy.data.objects), len(bpy.data.meshes), len(bpy.data.armatures))

scene = bpy.context.scene
scene.frame_set(5)
out["preset"] = attempt(bpy.ops.joker.apply_preset, preset="scream", keyframe=True)
out["prompt"] = scene.joker.prompt
scene.frame_set(1)
model = model_cache.model_for(armature)
from joker_blender.rig_state import write_params
write_params(mesh, armature, model, {"jaw_pose": [0.0, 0.0, 0.0]})  # an unkeyed edit, undone by frame_set
scene.frame_set(5)
out["keyed_at_5"] = read_params(mesh, armature, model)
from joker_blender.animation import assigned_fcurves  # flat (4.2, 4.3) or layered (4.4+) actions
out["keyed_frames"] = sorted({int(k.co[0]) for fc in assigned_fcurves(armature) for k in fc.keyframe_points})

out["generate_without_reference"] = attempt(bpy.ops.joker.generate)
scene.joker.reference_path = "/nonexistent/photo.jpg"
out["generate_missing_reference"] = attempt(bpy.ops.joker.generate)
out["last_error"] = scene.joker.last_error
from joker_blender.submission import results_folder
out["unsaved_results"] = str(results_folder("//joker_results"))  # bpy.utils.user_resource
out["engine_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "joker", "diffusers"))
report(**out)
"""


@pytest.fixture(scope="module")
def operators(tmp_path_factory):
    folder = tmp_path_factory.mktemp("operators")
    official = folder / "flame2023.pkl"
    official_model = write_official_layout_pkl(official)
    broken = folder / "broken.pkl"
    broken.write_bytes(b"\x80\x02this is not a FLAME model")
    out = run_blender(OPERATORS, folder, str(official), str(broken))
    return out, official, official_model, broken


def test_add_head_builds_the_demo_rig_and_a_rig_from_an_official_flame_file(operators):
    out, official, model, _ = operators
    assert out["demo"] == [["FINISHED"], ""]
    assert out["objects_after_demo"] == ["Joker Head", "Joker Head Rig"]
    assert out["official"] == [["FINISHED"], ""]
    rig = out["official_rig"]
    assert rig["source"] == str(official)
    assert rig["keys"] == 1 + model.n_shape + model.n_expr + 1  # basis, identity, expression, correctives
    assert rig["bones"] == sorted(["global", "neck", "jaw", "eye_left", "eye_right"])


def test_unreadable_flame_file_reports_the_engines_message_and_adds_nothing(operators):
    out, _, _, broken = operators
    with pytest.raises(JokerError) as engine:
        load_head_model(broken)
    status, message = out["broken"]
    assert status == ["ERROR"]
    assert message == f"Error: {engine.value}"  # one line, the engine's words, no traceback
    assert "Traceback" not in message and "\n" not in message
    assert out["nothing_added"]


def test_apply_preset_poses_keys_and_sets_the_prompt(operators):
    out, _, model, _ = operators
    preset = get_preset("scream")
    assert out["preset"] == [["FINISHED"], ""]
    assert out["prompt"] == preset.prompt
    assert 5 in out["keyed_frames"]
    expected = preset.params_for(model)
    keyed = out["keyed_at_5"]
    assert np.allclose(keyed["jaw_pose"], expected.jaw_pose, atol=1e-5)  # the key wins over the unkeyed edit
    assert np.allclose(keyed["neck_pose"], expected.neck_pose, atol=1e-5)
    assert np.allclose(keyed["expression"], expected.expression, atol=1e-5)
    assert np.abs(expected.jaw_pose).max() > 0.1  # the check above is not trivially zero


def test_operators_refuse_with_reasons_when_something_is_missing(operators):
    out, *_ = operators
    status, message = out["preset_without_rig"]
    assert status == ["ERROR"] and "Add a Joker head first" in message
    status, message = out["generate_without_reference"]
    assert status == ["ERROR"] and "Choose a reference photo first" in message
    status, message = out["generate_missing_reference"]
    assert status == ["ERROR"] and "/nonexistent/photo.jpg" in message and "Fix: choose a photo" in message
    assert out["last_error"] in message


def test_results_of_an_unsaved_file_go_to_blenders_user_data_folder(operators):
    out, official, *_ = operators
    assert out["unsaved_results"] == str(official.parent / "blender_user" / "datafiles" / "joker_results")


def test_the_addon_never_imports_the_engine_or_torch(operators):
    out, *_ = operators
    assert out["engine_modules"] == []  # Blender gets joker_core only (and numpy, which it ships)

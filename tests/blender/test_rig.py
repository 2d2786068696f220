"""The rig in real Blender is FLAME: keyframed values evaluated at a frame reproduce the
engine's LBS, pose correctives included."""

import numpy as np
import pytest

from blender_runner import ENABLE_ADDON, REPORT, run_blender
from flame_fixtures import make_small_head_model, write_official_layout_pkl
from joker_core.flame_format import save_head_model
from joker_core.lbs import numpy_rig, pose
from joker_core.rig_params import RigParams

pytestmark = pytest.mark.blender

N_SHAPE, N_EXPR = 8, 6
START = {"shape": [0.5] * N_SHAPE, "expression": [0.0] * N_EXPR, "jaw_pose": [0.0, 0.0, 0.0],
         "neck_pose": [0.0, 0.0, 0.0], "eye_left_pose": [0.0, 0.0, 0.0], "global_pose": [0.0, 0.0, 0.0],
         "translation": [0.0, 0.0, 0.0]}
END = {"shape": [0.5] * N_SHAPE, "expression": [2.0, -1.0, 0.5, 0.0, 1.0, 0.0], "jaw_pose": [0.35, 0.0, 0.05],
       "neck_pose": [0.1, 0.4, 0.0], "eye_left_pose": [0.0, 0.2, 0.0], "global_pose": [0.0, 0.0, 0.2],
       "translation": [0.01, 0.02, 0.0]}

BUILD_AND_EVALUATE = REPORT + ENABLE_ADDON + """
import json
model_path, start, end = sys.argv[-3], json.loads(sys.argv[-2]), json.loads(sys.argv[-1])
import numpy as np
from joker_blender import model_cache
from joker_blender.rig_build import build_rig
from joker_blender.rig_state import read_params, write_params
model = model_cache.load(model_path)
mesh, armature = build_rig(model, model_path)
write_params(mesh, armature, model, start, keyframe_at=1)
write_params(mesh, armature, model, end, keyframe_at=11)
scene = bpy.context.scene
out = {}
for frame in (1, 6, 11):
    scene.frame_set(frame)
    evaluated = mesh.evaluated_get(bpy.context.evaluated_depsgraph_get())
    co = np.empty(len(evaluated.data.vertices) * 3, dtype=np.float32)
    evaluated.data.vertices.foreach_get("co", co)
    key = np.empty(len(mesh.data.vertices) * 3, dtype=np.float32)
    mesh.data.shape_keys.key_blocks["pose_correctives"].data.foreach_get("co", key)
    corrective_max = float(np.abs(key.reshape(-1, 3) - model.v_template).max())
    out[frame] = {"params": read_params(mesh, armature, model), "vertices": co.reshape(-1, 3).tolist(),
                  "corrective_max": corrective_max}
report(frames=out, bones=[b.name for b in armature.data.bones],
       groups=[g.name for g in mesh.vertex_groups], n_keys=len(mesh.data.shape_keys.key_blocks),
       face_up=list(armature.matrix_world.to_3x3() @ __import__("mathutils").Vector((0, 0, 1))))
"""


# The official layout splits components as FLAME does (300 identity, then expression).
@pytest.mark.parametrize("file_format, n_shape", [("npz", N_SHAPE), ("official_pkl", 300)])
def test_keyframed_rig_evaluates_like_the_engines_lbs(tmp_path, file_format, n_shape):
    import json
    model = make_small_head_model(n_shape=n_shape, n_expr=N_EXPR)
    if file_format == "npz":
        path = save_head_model(model, tmp_path / "head.npz")
    else:
        path = tmp_path / "generic_model.pkl"
        model = write_official_layout_pkl(path, model)
    out = run_blender(BUILD_AND_EVALUATE, tmp_path, str(path), json.dumps(START), json.dumps(END))
    assert out["bones"] == ["global", "neck", "jaw", "eye_left", "eye_right"]
    assert out["groups"] == out["bones"]
    assert out["n_keys"] == 1 + n_shape + N_EXPR + 1  # basis, identity, expression, correctives
    assert np.allclose(out["face_up"], [0, -1, 0], atol=1e-6)  # FLAME +z (face) -> Blender -y
    rig = numpy_rig(model)
    for frame, expected in (("1", START), ("11", END)):
        params = out["frames"][frame]["params"]
        for name, value in expected.items():
            assert np.allclose(params[name][: len(value)], value, atol=1e-5), (frame, name)
    middle = out["frames"]["6"]["params"]
    assert np.allclose(middle["expression"], 0.5 * np.add(START["expression"], END["expression"]), atol=1e-5)
    for frame, data in out["frames"].items():
        engine = pose(rig, RigParams.from_dict(data["params"])).vertices
        blender = np.array(data["vertices"])
        assert np.abs(blender - engine).max() < 5e-5, frame
    # The corrective key carries real work at the posed frames (correctives + joint shifts).
    assert out["frames"]["6"]["corrective_max"] > 1e-4
    assert out["frames"]["1"]["corrective_max"] < 1e-6  # rest pose: skinning alone is exact

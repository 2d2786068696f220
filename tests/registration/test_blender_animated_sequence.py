"""In real Blender: sequence.glb (three known heads, frames 10, 12, 14) imports as ONE
object with a shape key per frame; at each generated frame the evaluated mesh is that
frame's head, between two it is their linear blend, and a re-generated frame changes only
its own key. The shape keys are what Blender's own glTF importer makes of the morph
targets (the add-on only re-keys them on scene frames)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blender_runner import ENABLE_ADDON, REPORT, run_blender
from joker.mesh.export import TexturedMesh, write_glb
from sequence_heads import FRAMES, write_sequence

pytestmark = pytest.mark.blender

SCRIPT = REPORT + ENABLE_ADDON + """
import json
from pathlib import Path
import numpy as np
from joker_blender.animated_sequence import frame_keys, import_animated_sequence, replace_frame
args = json.loads(sys.argv[-1])
scene = bpy.context.scene
head = import_animated_sequence(scene, Path(args["sequence"]), "Animated head", None)

def evaluated(frame, subframe=0.0):
    scene.frame_set(frame, subframe=subframe)
    mesh = head.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh()
    co = np.empty(3 * len(mesh.vertices))
    mesh.vertices.foreach_get("co", co)
    head.evaluated_get(bpy.context.evaluated_depsgraph_get()).to_mesh_clear()
    return co.reshape(-1, 3)

def key_coordinates():
    out = {}
    for frame, key in frame_keys(head).items():
        co = np.empty(3 * len(key.data))
        key.data.foreach_get("co", co)
        out[frame] = co.tolist()
    return out

at = {frame: evaluated(frame).tolist() for frame in args["frames"]}
between = evaluated(args["frames"][0] + 1).tolist()
keys_before = key_coordinates()
replace_frame(scene, head, args["frames"][1], Path(args["regenerated"]))
keys_after = key_coordinates()
regenerated_at = evaluated(args["frames"][1]).tolist()
np.save(args["out"], np.array([at[f] for f in args["frames"]] + [between, regenerated_at]))
report(objects=[obj.name for obj in bpy.data.objects], keys=sorted(frame_keys(head)),
       key_names=[k.name for k in head.data.shape_keys.key_blocks],
       changed=[f for f in keys_before if keys_before[f] != keys_after[f]])
"""

def _blender_frame(vertices):
    """The FLAME frame (glTF's +y up) as Blender's glTF importer stores it (+z up)."""
    x, y, z = np.asarray(vertices).T
    return np.stack([x, -z, y], axis=1)


def test_a_sequence_imports_as_one_object_keyed_per_frame(tmp_path):
    path, heads = write_sequence(tmp_path)
    regenerated = TexturedMesh(heads[1].vertices + np.array([0.0, 0.002, 0.0]), heads[1].faces, heads[1].uvs,
                               heads[1].normals, heads[1].texture)
    write_glb(regenerated, tmp_path / "head_rig.glb")
    args = {"sequence": str(path), "regenerated": str(tmp_path / "head_rig.glb"), "frames": list(FRAMES),
            "out": str(tmp_path / "evaluated.npy")}
    result = run_blender(SCRIPT, tmp_path, json.dumps(args), timeout=120)
    assert result["objects"] == ["Animated head"]
    assert result["keys"] == list(FRAMES) and result["key_names"][1:] == [f"frame_{n:04d}" for n in FRAMES]
    evaluated = np.load(tmp_path / "evaluated.npy")
    for index, head in enumerate(heads):
        np.testing.assert_allclose(evaluated[index], _blender_frame(head.vertices), atol=1e-5)
    # Halfway between frames 10 and 12 (frame 11): the mean of the two heads.
    np.testing.assert_allclose(evaluated[3], _blender_frame((heads[0].vertices + heads[1].vertices) / 2), atol=1e-5)
    assert result["changed"] == [FRAMES[1]]
    np.testing.assert_allclose(evaluated[4], _blender_frame(regenerated.vertices), atol=1e-5)


"""Rig parameters <-> the scene: shape-key values and bone rotations in FLAME's terms.

Bone rotations are converted with each bone's rest matrix, R_flame = B R_basis B^T, so
bones may point wherever reads best in the viewport while the numbers stay FLAME's
axis-angle (the engine's LBS reproduces the evaluated mesh from them).
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix, Quaternion, Vector

from joker_core.head_model import JOINT_NAMES, HeadModel
from joker_core.rig_params import check_length

from .rig_build import shape_key_names

POSE_FIELDS = dict(zip(JOINT_NAMES, ("global_pose", "neck_pose", "jaw_pose", "eye_left_pose", "eye_right_pose")))


def _rest(pose_bone: bpy.types.PoseBone) -> Matrix:
    return pose_bone.bone.matrix_local.to_3x3()


def flame_rotation(pose_bone: bpy.types.PoseBone) -> Matrix:
    rest = _rest(pose_bone)
    return rest @ pose_bone.matrix_basis.to_3x3() @ rest.transposed()


def read_params(mesh: bpy.types.Object, armature: bpy.types.Object, model: HeadModel) -> dict:
    """The rig's current state as a RigParams-compatible dict (values at the current frame)."""
    keys = mesh.data.shape_keys.key_blocks
    identity, expression = shape_key_names(model)
    params = {"shape": [keys[name].value for name in identity],
              "expression": [keys[name].value for name in expression]}
    for joint_name, field in POSE_FIELDS.items():
        axis, angle = flame_rotation(armature.pose.bones[joint_name]).to_quaternion().to_axis_angle()
        params[field] = list(Vector(axis) * angle)
    root = armature.pose.bones[JOINT_NAMES[0]]
    params["translation"] = list(_rest(root) @ root.location)
    return params


def write_params(mesh: bpy.types.Object, armature: bpy.types.Object, model: HeadModel, params: dict,
                 keyframe_at: int | None = None) -> None:
    """Set the rig to `params` (missing fields stay as they are); optionally key them."""
    keys = mesh.data.shape_keys.key_blocks
    identity, expression = shape_key_names(model)
    for field, names in (("shape", identity), ("expression", expression)):
        values = params.get(field)
        if values is None:
            continue
        check_length(field, len(values), len(names))
        padded = np.zeros(len(names))
        padded[: len(values)] = values
        for name, value in zip(names, padded):
            keys[name].value = float(value)
            if keyframe_at is not None:
                keys[name].keyframe_insert("value", frame=keyframe_at)
    for joint_name, field in POSE_FIELDS.items():
        if params.get(field) is None:
            continue
        pose_bone = armature.pose.bones[joint_name]
        vector = Vector(params[field])
        flame = Quaternion(vector.normalized(), vector.length) if vector.length > 0 else Quaternion()
        rest = _rest(pose_bone)
        pose_bone.rotation_euler = (rest.transposed() @ flame.to_matrix() @ rest).to_euler("XYZ")
        if keyframe_at is not None:
            pose_bone.keyframe_insert("rotation_euler", frame=keyframe_at)
    if params.get("translation") is not None:
        root = armature.pose.bones[JOINT_NAMES[0]]
        root.location = _rest(root).transposed() @ Vector(params["translation"])
        if keyframe_at is not None:
            root.keyframe_insert("location", frame=keyframe_at)

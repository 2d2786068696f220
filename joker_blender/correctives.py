"""What armature skinning cannot express, kept in step with the rig.

FLAME differs from Blender's armature deformation in two ways: pose-corrective
blendshapes, posedirs . (R_j - I) over the non-root joints; and joints regressed from the
shaped head (identity AND expression), while bones rest where they were built. The second
adds a shift t_v(J_flame - J_bones) at each posed vertex (shifts are linear in the
joints); adding delta = (I + D_v)^-1 t_v to the rest shape undoes it exactly through the
vertex's blended rotation I + D_v. Both go into one shape key, refreshed by a handler
whenever the rig's parameters change, so the evaluated mesh is the engine's FLAME mesh.
"""

from __future__ import annotations

import bpy
import numpy as np
from bpy.app.handlers import persistent

from joker_core.head_model import HeadModel
from joker_core.lbs import RigArrays, numpy_rig, rotation_deltas, skinning_motion
from joker_core.rig_params import RigParams

from . import model_cache
from .rig_build import CORRECTIVES_KEY, RIG_TAG
from .rig_state import read_params

_last_state: dict[str, bytes] = {}
_rigs: dict[int, tuple[HeadModel, RigArrays]] = {}  # id -> (the model itself, its arrays)


def _rig_arrays(model: HeadModel) -> RigArrays:
    """LBS arrays built once per model (the model is kept with them, so an id is never
    mistaken for that of a later model)."""
    cached = _rigs.get(id(model))
    if cached is None or cached[0] is not model:
        cached = _rigs[id(model)] = (model, numpy_rig(model))
    return cached[1]


def corrective_offsets(model: HeadModel, params: RigParams, bone_joints: np.ndarray) -> np.ndarray:
    """N x 3 rest-space offsets that make armature skinning about `bone_joints` equal FLAME."""
    rig = _rig_arrays(model)
    params = params.validated(model)
    coefficients = np.concatenate([params.shape, params.expression])
    v_shaped = model.v_template + (coefficients @ rig.shape_basis).reshape(-1, 3)
    flame_joints = model.J_regressor @ v_shaped
    deltas = rotation_deltas(rig, params.rotations[None])  # 1 x J x 3 x 3
    pose_offsets = (deltas[0, 1:].reshape(-1) @ rig.pose_basis).reshape(-1, 3)
    motion = skinning_motion(rig, deltas, (flame_joints - bone_joints)[None])
    blended = np.eye(3) + motion.vertex_deltas[0]
    return pose_offsets + np.linalg.solve(blended, motion.vertex_shifts[0][..., None])[..., 0]


def refresh(armature: bpy.types.Object) -> bool:
    """Update one rig's corrective shape key; returns whether anything was written."""
    mesh = bpy.data.objects.get(armature.get("joker_mesh", ""))
    if mesh is None or mesh.data.shape_keys is None or CORRECTIVES_KEY not in mesh.data.shape_keys.key_blocks:
        return False
    model = model_cache.model_for(armature)
    if model is None:
        return False
    params = RigParams.from_dict(read_params(mesh, armature, model))
    bone_joints = np.array([bone.head_local for bone in armature.data.bones])
    state = np.concatenate([params.shape, params.expression, params.rotations.ravel(), bone_joints.ravel()])
    key = np.round(state, 9).tobytes()
    if _last_state.get(mesh.name_full) == key:
        return False
    positions = model.v_template + corrective_offsets(model, params, bone_joints)
    mesh.data.shape_keys.key_blocks[CORRECTIVES_KEY].data.foreach_set("co", positions.astype(np.float32).ravel())
    mesh.data.update()
    _last_state[mesh.name_full] = key
    return True


@persistent
def _on_update(scene, depsgraph=None):
    for obj in scene.objects:
        if obj.type == "ARMATURE" and RIG_TAG in obj:
            refresh(obj)


_HANDLERS = (bpy.app.handlers.frame_change_post, bpy.app.handlers.depsgraph_update_post)


def register() -> None:
    for handlers in _HANDLERS:
        if _on_update not in handlers:
            handlers.append(_on_update)


def unregister() -> None:
    for handlers in _HANDLERS:
        if _on_update in handlers:
            handlers.remove(_on_update)
    _last_state.clear()
    _rigs.clear()

"""Build the FLAME-layout rig in the scene: a mesh with identity/expression shape keys and an
armature (global > neck > jaw, eyes) that skins it, both carrying FLAME_TO_BLENDER.

The mesh data stays in the FLAME frame (metres, +y up, face +z) and the objects rotate it,
so vertex coordinates, cameras and the engine's maths share one frame. Armature skinning
with these weights is FLAME's linear blend skinning; shape keys are its blendshapes; the
pose correctives live in one shape key that correctives.py refreshes as bones move.
"""

from __future__ import annotations

import bpy
import numpy as np
from mathutils import Matrix

from joker_core.conventions import FLAME_TO_BLENDER
from joker_core.errors import JokerError
from joker_core.face_region import face_region
from joker_core.head_model import JOINT_NAMES, HeadModel

from .scene_normals import FACE_REGION_ATTRIBUTE

CORRECTIVES_KEY = "pose_correctives"
RIG_TAG = "joker_rig"          # custom property on both objects: the model's source
BONE_LENGTH = 0.03
# Bones point where an artist expects (eyes and jaw forward, neck up); correctives.py and
# rig_state.py convert bone rotations into FLAME's frame with each bone's rest matrix.
_BONE_DIRECTIONS = {"global": (0, 1, 0), "neck": (0, 1, 0), "jaw": (0, -0.3, 1),
                    "eye_left": (0, 0, 1), "eye_right": (0, 0, 1)}


def shape_key_names(model: HeadModel) -> tuple[list[str], list[str]]:
    identity = [f"shape_{i:03d}" for i in range(model.n_shape)]
    names = model.expression_names or [f"{i:03d}" for i in range(model.n_expr)]
    return identity, [f"expr_{name}" for name in names]


def joint_positions(model: HeadModel, shape: np.ndarray | None = None) -> np.ndarray:
    vertices = model.v_template
    if shape is not None:
        vertices = vertices + model.shapedirs[:, :, : model.n_shape] @ shape
    return model.J_regressor @ vertices


def _face_region_or_none(model: HeadModel) -> np.ndarray | None:
    """The engine's "face" region: the model's own, else its eye-based heuristic; None for
    a model whose eye joints give none (its rig renders full-head normal maps only)."""
    try:
        return face_region(model)
    except JokerError:
        return None


def _build_mesh(model: HeadModel, name: str) -> bpy.types.Object:
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata(model.v_template.tolist(), [], model.faces.tolist())
    mesh.shade_smooth()
    if model.uv_coords is not None:
        layer = mesh.uv_layers.new(name="UVMap")
        corners = model.uv_coords[model.uv_faces.reshape(-1)]
        layer.data.foreach_set("uv", corners.astype(np.float32).ravel())
    region = _face_region_or_none(model)
    if region is not None:
        attribute = mesh.attributes.new(FACE_REGION_ATTRIBUTE, "FLOAT", "POINT")
        attribute.data.foreach_set("value", region.astype(np.float32))
    mesh.validate()
    obj = bpy.data.objects.new(name, mesh)
    obj.shape_key_add(name="Basis", from_mix=False)
    identity, expression = shape_key_names(model)
    for index, key_name in enumerate(identity + expression):
        key = obj.shape_key_add(name=key_name, from_mix=False)
        key.slider_min, key.slider_max = -3.0, 3.0
        key.data.foreach_set("co", (model.v_template + model.shapedirs[:, :, index]).astype(np.float32).ravel())
    obj.shape_key_add(name=CORRECTIVES_KEY, from_mix=False).value = 1.0
    for joint, joint_name in enumerate(JOINT_NAMES):
        group = obj.vertex_groups.new(name=joint_name)
        weights = model.weights[:, joint]
        for vertex in np.flatnonzero(weights > 1e-6):
            group.add([int(vertex)], float(weights[vertex]), "REPLACE")
    return obj


def _build_armature(model: HeadModel, name: str, collection: bpy.types.Collection) -> bpy.types.Object:
    armature = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, armature)
    collection.objects.link(obj)
    joints, parents = joint_positions(model), model.parents
    view_layer = bpy.context.view_layer
    previous_active = view_layer.objects.active
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        bones = []
        for joint, joint_name in enumerate(JOINT_NAMES):
            bone = armature.edit_bones.new(joint_name)
            direction = np.asarray(_BONE_DIRECTIONS[joint_name], dtype=float)
            bone.head = joints[joint].tolist()
            bone.tail = (joints[joint] + BONE_LENGTH * direction / np.linalg.norm(direction)).tolist()
            bone.roll = 0.0
            if parents[joint] >= 0:
                bone.parent = bones[parents[joint]]
            bones.append(bone)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")
        view_layer.objects.active = previous_active
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "XYZ"
    return obj


def build_rig(model: HeadModel, source: str, collection: bpy.types.Collection | None = None,
              name: str = "Joker Head") -> tuple[bpy.types.Object, bpy.types.Object]:
    """Create (mesh object, armature object) for `model`; `source` is "demo" or the model path."""
    collection = collection or bpy.context.scene.collection
    armature = _build_armature(model, f"{name} Rig", collection)
    mesh = _build_mesh(model, name)
    collection.objects.link(mesh)
    mesh.parent = armature
    modifier = mesh.modifiers.new("Joker Skin", "ARMATURE")
    modifier.object = armature
    modifier.use_vertex_groups, modifier.use_bone_envelopes = True, False
    orientation = Matrix(FLAME_TO_BLENDER.tolist())
    armature.matrix_world = orientation
    for obj in (mesh, armature):
        obj[RIG_TAG] = source
    mesh["joker_model_name"] = model.name
    armature["joker_mesh"] = mesh.name
    return mesh, armature

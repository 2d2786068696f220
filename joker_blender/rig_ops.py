"""Operators on the rig: add it to the scene, apply (and key) an expression preset."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty

from joker_core.errors import JokerError
from joker_core.head_model import HeadModel
from joker_core.presets import get_preset, list_presets

from . import model_cache, preferences
from .reports import reports_errors
from .rig_build import RIG_TAG, build_rig
from .rig_state import write_params


def find_rig(context) -> tuple[bpy.types.Object, bpy.types.Object] | None:
    """(mesh, armature) of the active rig, else of the first rig in the scene."""
    candidates = [context.active_object] if context.active_object else []
    candidates += [obj for obj in context.scene.objects if obj.type == "ARMATURE"]
    for obj in candidates:
        if obj is None or RIG_TAG not in obj:
            continue
        armature = obj if obj.type == "ARMATURE" else obj.parent
        mesh = bpy.data.objects.get(armature.get("joker_mesh", "")) if armature else None
        if mesh is not None and mesh.name in context.scene.objects:
            return mesh, armature
    return None


def poll_rig(operator: type[bpy.types.Operator], context, reference: bool = False) -> bool:
    """Operator.poll for what most operators need, saying what is missing in the tooltip."""
    if find_rig(context) is None:
        operator.poll_message_set("Add a Joker head first")
        return False
    if reference and not context.scene.joker.reference_path:
        operator.poll_message_set("Choose a reference photo first")
        return False
    return True


def rig_with_model(context) -> tuple[bpy.types.Object, bpy.types.Object, HeadModel]:
    """(mesh, armature, model) of the scene's rig, or a JokerError saying what is missing."""
    rig = find_rig(context)
    if rig is None:
        raise JokerError("there is no Joker rig in the scene", "add one with Add Joker Head")
    mesh, armature = rig
    model = model_cache.model_for(armature)
    if model is None:
        raise JokerError(f"the model file {armature[RIG_TAG]!r} of {armature.name} is missing",
                         "set the FLAME model path in the Joker preferences")
    return mesh, armature, model


# A fixed list: Blender keeps no reference to strings an items callback returns.
PRESET_ITEMS = tuple((name, name.replace("_", " ").title(), get_preset(name).prompt) for name in list_presets())


def add_head(context, source: str) -> tuple[bpy.types.Object, bpy.types.Object]:
    """Build the rig of `source` ("demo" or a model file) in the active collection and make
    its armature active. A model that cannot be read raises before anything is added."""
    model = model_cache.load(source)
    mesh, armature = build_rig(model, source, collection=context.collection)
    for obj in context.selected_objects:
        obj.select_set(False)
    armature.select_set(True)
    context.view_layer.objects.active = armature
    return mesh, armature


def apply_preset(context, name: str, keyframe: bool = False) -> None:
    """Pose the scene's rig with preset `name`, key it at the current frame if asked, and
    take its prompt."""
    preset = get_preset(name)
    mesh, armature, model = rig_with_model(context)
    frame = context.scene.frame_current if keyframe else None
    write_params(mesh, armature, model, preset.params_for(model).to_dict(), keyframe_at=frame)
    context.scene.joker.prompt = preset.prompt


class JOKER_OT_add_head(bpy.types.Operator):
    """Add the FLAME rig from the model file in the preferences, or the built-in demo head"""

    bl_idname = "joker.add_head"
    bl_label = "Add Joker Head"
    bl_options = {"REGISTER", "UNDO"}

    use_demo: BoolProperty(name="Demo head", default=False,
                           description="Use the built-in demo head even if a FLAME file is set")

    @reports_errors
    def execute(self, context):
        prefs = preferences.get(context)
        source = model_cache.DEMO_SOURCE if self.use_demo or not prefs.flame_model_path else prefs.flame_model_path
        mesh, _ = add_head(context, source)
        if not context.scene.joker.job_id:  # a scene that never generated starts at the default quality
            context.scene.joker.quality = prefs.default_quality
        self.report({"INFO"}, f"Added {mesh['joker_model_name']} ({len(mesh.data.vertices)} vertices)")
        return {"FINISHED"}


class JOKER_OT_apply_preset(bpy.types.Operator):
    """Pose the rig with an expression preset and use its suggested prompt"""

    bl_idname = "joker.apply_preset"
    bl_label = "Apply Expression Preset"
    bl_options = {"REGISTER", "UNDO"}

    preset: EnumProperty(name="Preset", items=PRESET_ITEMS, description="Expression to pose the rig with")
    keyframe: BoolProperty(name="Insert keyframes", default=False,
                           description="Key the preset at the current frame")

    @classmethod
    def poll(cls, context):
        return poll_rig(cls, context)

    @reports_errors
    def execute(self, context):
        apply_preset(context, self.preset, self.keyframe)
        return {"FINISHED"}


CLASSES = (JOKER_OT_add_head, JOKER_OT_apply_preset)

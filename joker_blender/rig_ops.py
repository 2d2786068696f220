"""Operators on the rig: add it to the scene, apply (and key) an expression preset."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty

from joker_core.errors import JokerError

from . import model_cache, preferences
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


def _preset_items(self, context):
    from joker_core.presets import list_presets
    return [(p.name, p.name.replace("_", " ").title(), p.prompt) for p in list_presets()]


class JOKER_OT_add_head(bpy.types.Operator):
    """Add the FLAME rig from the model file in the preferences, or the built-in demo head"""

    bl_idname = "joker.add_head"
    bl_label = "Add Joker Head"
    bl_options = {"REGISTER", "UNDO"}

    use_demo: BoolProperty(name="Demo head", default=False,
                           description="Use the built-in demo head even if a FLAME file is set")

    def execute(self, context):
        path = preferences.get(context).flame_model_path
        source = model_cache.DEMO_SOURCE if self.use_demo or not path else path
        try:
            model = model_cache.load(source)
        except JokerError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        mesh, armature = build_rig(model, source, collection=context.collection)
        for obj in context.selected_objects:
            obj.select_set(False)
        armature.select_set(True)
        context.view_layer.objects.active = armature
        self.report({"INFO"}, f"Added {model.name} ({model.n_vertices} vertices)")
        return {"FINISHED"}


class JOKER_OT_apply_preset(bpy.types.Operator):
    """Pose the rig with an expression preset and use its suggested prompt"""

    bl_idname = "joker.apply_preset"
    bl_label = "Apply Expression Preset"
    bl_options = {"REGISTER", "UNDO"}

    preset: EnumProperty(name="Preset", items=_preset_items)
    keyframe: BoolProperty(name="Insert keyframes", default=False,
                           description="Key the preset at the current frame")

    @classmethod
    def poll(cls, context):
        if find_rig(context) is None:
            cls.poll_message_set("Add a Joker head first")
            return False
        return True

    def execute(self, context):
        from joker_core.presets import get_preset

        mesh, armature = find_rig(context)
        model = model_cache.model_for(armature)
        if model is None:
            self.report({"ERROR"}, "The rig's model file is missing; set it in the Joker preferences")
            return {"CANCELLED"}
        preset = get_preset(self.preset)
        frame = context.scene.frame_current if self.keyframe else None
        write_params(mesh, armature, model, _as_dict(preset.params_for(model)), keyframe_at=frame)
        context.scene.joker.prompt = preset.prompt
        return {"FINISHED"}


def _as_dict(params) -> dict:
    return params if isinstance(params, dict) else params.to_dict()


CLASSES = (JOKER_OT_add_head, JOKER_OT_apply_preset)

"""Per-frame prompts: a prompt track keyed like any other property.

Blender cannot key a string, so the sequence keeps a list of prompts and the scene an
integer track, `scene.joker.prompt_track`: 0 is the Prompt panel's prompt, N the Nth of the
list. Generate Sequence reads the track at each frame as it reads the rig (whatever the
timeline shows there is what is sent). *Key Prompt* keys it with CONSTANT interpolation, so
a prompt holds until the next key; a key set with `I` interpolates (and rounds) like any
integer, as Blender does.
"""

from __future__ import annotations

import bpy
from bpy.props import IntProperty

from joker_core.errors import JokerError

from .animation import assigned_fcurves
from .reports import reports_errors

TRACK = "prompt_track"


def frame_prompt(settings, frame: int) -> str | None:
    """The prompt the track gives the scene's current frame (None: the shared prompt)."""
    track, prompts = settings.prompt_track, settings.sequence_prompts
    if track == 0:
        return None
    if track > len(prompts):
        raise JokerError(f"the prompt track is {track} at frame {frame}, but the sequence has {len(prompts)} "
                         "prompts", "add prompts in the Sequence panel, or key the track lower there")
    return prompts[track - 1].text


def key_prompt(scene: bpy.types.Scene, track: int) -> None:
    """Key the prompt track to `track` at the current frame, held until the next key."""
    settings = scene.joker
    if not 0 <= track <= len(settings.sequence_prompts):
        raise JokerError(f"prompt {track} is not in the list (0 to {len(settings.sequence_prompts)})",
                         "add the prompt to the Sequence panel's list first")
    settings.prompt_track = track
    settings.keyframe_insert(TRACK, frame=scene.frame_current)
    path = settings.path_from_id(TRACK)
    for fcurve in assigned_fcurves(scene):
        if fcurve.data_path == path:
            for point in fcurve.keyframe_points:
                point.interpolation = "CONSTANT"


class JOKER_OT_add_prompt(bpy.types.Operator):
    """Add a prompt to the sequence's list (starting from the Prompt panel's)"""

    bl_idname = "joker.add_prompt"
    bl_label = "Add Prompt"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        settings = context.scene.joker
        settings.sequence_prompts.add().text = settings.prompt
        settings.sequence_prompts_index = len(settings.sequence_prompts) - 1
        return {"FINISHED"}


class JOKER_OT_remove_prompt(bpy.types.Operator):
    """Remove the selected prompt from the list (track keys above it then name the next one)"""

    bl_idname = "joker.remove_prompt"
    bl_label = "Remove Prompt"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return len(context.scene.joker.sequence_prompts) > 0

    def execute(self, context):
        settings = context.scene.joker
        settings.sequence_prompts.remove(settings.sequence_prompts_index)
        settings.sequence_prompts_index = max(0, min(settings.sequence_prompts_index,
                                                     len(settings.sequence_prompts) - 1))
        return {"FINISHED"}


class JOKER_OT_key_prompt(bpy.types.Operator):
    """Key the prompt track at this frame: the selected prompt of the list (or, with track 0,
    the Prompt panel's) from here until the next key"""

    bl_idname = "joker.key_prompt"
    bl_label = "Key Prompt"
    bl_options = {"REGISTER", "UNDO"}

    track: IntProperty(name="Track", default=-1, min=-1,
                       description="0: the Prompt panel's prompt; N: the Nth of the list; -1: the selected one")

    @reports_errors
    def execute(self, context):
        settings = context.scene.joker
        track = settings.sequence_prompts_index + 1 if self.track < 0 and settings.sequence_prompts else self.track
        key_prompt(context.scene, max(track, 0))
        return {"FINISHED"}


class JOKER_UL_prompts(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_property, index=0, flt_flag=0):
        layout.label(text=f"{index + 1}")
        layout.prop(item, "text", text="", emboss=False)


CLASSES = (JOKER_OT_add_prompt, JOKER_OT_remove_prompt, JOKER_OT_key_prompt, JOKER_UL_prompts)

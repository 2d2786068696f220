"""View3D > Sidebar > Joker: one sub-panel per step, top to bottom."""

from __future__ import annotations

import bpy

from . import model_cache, panel_images, summary
from .rig_build import shape_key_names
from .rig_ops import find_rig
from .sequence_results import generated_frames, is_sequence
from .view_ops import VIEWS_COLLECTION


class _JokerPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Joker"


class JOKER_PT_main(_JokerPanel, bpy.types.Panel):
    bl_label = "Joker Heads"

    def draw(self, context):
        rig = find_rig(context)
        self.layout.label(text=f"Rig: {rig[1].name}" if rig else "No rig in the scene",
                          icon="ARMATURE_DATA" if rig else "INFO")


class JOKER_PT_rig(_JokerPanel, bpy.types.Panel):
    bl_label = "Rig"
    bl_parent_id = "JOKER_PT_main"

    def draw(self, context):
        layout = self.layout
        layout.operator("joker.add_head", icon="ADD")
        rig = find_rig(context)
        if rig is None:
            return
        mesh, armature = rig
        model = model_cache.model_for(armature)
        if model is None:
            layout.label(text="Model file missing: set it in the preferences", icon="ERROR")
            return
        layout.operator_menu_enum("joker.apply_preset", "preset", text="Apply Preset", icon="SHAPEKEY_DATA")
        keys = mesh.data.shape_keys.key_blocks
        identity, expression = shape_key_names(model)
        column = layout.column(align=True)
        column.label(text="Expression")
        for name in expression[:24]:
            column.prop(keys[name], "value", text=name.removeprefix("expr_").replace("_", " "), slider=True)
        column = layout.column(align=True)
        column.label(text="Pose")
        for bone, label in (("jaw", "Jaw"), ("neck", "Head turn"), ("eye_left", "Left eye"),
                            ("eye_right", "Right eye")):
            column.prop(armature.pose.bones[bone], "rotation_euler", text=label)
        layout.label(text=f"Identity: {len(identity)} shape keys on {mesh.name}")


class JOKER_PT_reference(_JokerPanel, bpy.types.Panel):
    bl_label = "Reference"
    bl_parent_id = "JOKER_PT_main"

    def draw(self, context):
        row = self.layout.row(align=True)
        row.prop(context.scene.joker, "reference_path", text="")
        row.operator("joker.load_reference", text="", icon="FILE_IMAGE")
        self.layout.operator("joker.alignment_check", icon="VIEW_CAMERA")
        self.layout.operator("joker.fit_rig", icon="USER")


class JOKER_PT_prompt(_JokerPanel, bpy.types.Panel):
    bl_label = "Prompt"
    bl_parent_id = "JOKER_PT_main"

    def draw(self, context):
        settings = context.scene.joker
        self.layout.prop(settings, "prompt", text="")
        self.layout.prop(settings, "negative_prompt")


class JOKER_PT_views(_JokerPanel, bpy.types.Panel):
    bl_label = "Views"
    bl_parent_id = "JOKER_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings = context.scene.joker
        column = self.layout.column(align=True)
        for name in ("views_azimuth", "views_elevation", "azimuth_range", "elevation_range", "view_size"):
            column.prop(settings, name)
        self.layout.prop(settings, "normal_mode")
        self.layout.prop(settings, "send_normal_maps")
        if bpy.data.collections.get(VIEWS_COLLECTION) is None:
            self.layout.operator("joker.show_cameras", icon="OUTLINER_OB_CAMERA").show = True
        else:
            self.layout.operator("joker.show_cameras", text="Hide View Cameras", icon="HIDE_ON").show = False


class JOKER_PT_generate(_JokerPanel, bpy.types.Panel):
    bl_label = "Generate"
    bl_parent_id = "JOKER_PT_main"

    def draw(self, context):
        settings, layout = context.scene.joker, self.layout
        row = layout.row(align=True)
        row.prop(settings, "quality", text="")
        row.prop(settings, "seed")
        layout.prop(settings, "prior")
        if settings.prior == "joker":
            layout.prop(settings, "prior_weights")
        layout.prop(settings, "head_mesh")
        row = layout.row(align=True)
        row.operator("joker.generate", icon="PLAY")
        row.operator("joker.cancel", text="", icon="CANCEL")
        _draw_job(layout, settings)


class JOKER_PT_sequence(_JokerPanel, bpy.types.Panel):
    bl_label = "Sequence"
    bl_parent_id = "JOKER_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        settings, layout = context.scene.joker, self.layout
        layout.prop(settings, "sequence_use_scene_range")
        row = layout.row(align=True)
        if settings.sequence_use_scene_range:
            scene = context.scene
            row.label(text=f"Frames {scene.frame_start} to {scene.frame_end}, step {scene.frame_step}")
        else:
            for name in ("sequence_start", "sequence_end", "sequence_step"):
                row.prop(settings, name)
        layout.prop(settings, "sequence_result", expand=True)
        layout.prop(settings, "sequence_normal_maps")
        _draw_prompt_track(layout.box(), settings)
        row = layout.row(align=True)
        row.operator("joker.generate_sequence", icon="RENDER_ANIMATION")
        row.operator("joker.cancel", text="", icon="CANCEL")
        layout.prop_search(settings, "sequence", bpy.data, "collections")
        layout.operator("joker.regenerate_frame", icon="FILE_REFRESH")
        _draw_job(layout, settings)


def _draw_prompt_track(box, settings) -> None:
    """The sequence's prompt list and the keyable track that picks one per frame."""
    box.label(text="Prompts per frame", icon="SEQUENCE")
    row = box.row()
    row.template_list("JOKER_UL_prompts", "", settings, "sequence_prompts", settings, "sequence_prompts_index", rows=2)
    column = row.column(align=True)
    column.operator("joker.add_prompt", text="", icon="ADD")
    column.operator("joker.remove_prompt", text="", icon="REMOVE")
    row = box.row(align=True)
    row.prop(settings, "prompt_track")
    row.operator("joker.key_prompt", text="", icon="KEY_HLT")
    track, prompts = settings.prompt_track, settings.sequence_prompts
    shown = ("the Prompt panel's" if track == 0 else
             f"“{prompts[track - 1].text}”" if track <= len(prompts) else f"none: the list has {len(prompts)}")
    box.label(text=f"This frame: {shown}")


class JOKER_PT_results(_JokerPanel, bpy.types.Panel):
    bl_label = "Results"
    bl_parent_id = "JOKER_PT_main"

    def draw(self, context):
        from .results import RESULTS_COLLECTION
        collection = bpy.data.collections.get(RESULTS_COLLECTION)
        column = self.layout.column(align=True)
        for obj in (collection.objects if collection else ()):
            latest = obj.name == context.scene.joker.last_result
            column.label(text=obj.name, icon="SOLO_ON" if latest else "OUTLINER_OB_MESH")
        for sequence in (child for child in (collection.children if collection else ()) if is_sequence(child)):
            column.label(text=f"{sequence.name}: {len(generated_frames(sequence))} frames", icon="RENDER_ANIMATION")
        head = summary.shown_head(context)
        if head is not None:
            _draw_summary(self.layout.box(), head)
        row = self.layout.row(align=True)
        row.operator("joker.reimport", icon="IMPORT")
        row.operator("joker.open_folder", icon="FILE_FOLDER")


def _draw_summary(box, head) -> None:
    """A result at a glance: its turntable (frames in a grid) and its job's key figures."""
    box.label(text=head.name, icon="OUTLINER_OB_MESH")
    icons = summary.turntable_icons(head)
    if icons:
        grid = box.grid_flow(columns=4, even_columns=True, align=True)
        for icon in icons:
            grid.template_icon(icon_value=icon, scale=3.0)
    else:
        box.operator("joker.show_turntable", icon="IMAGE_DATA")
    column = box.column(align=True)
    for label, value in summary.figure_lines(head):
        row = column.row()
        row.label(text=label)
        row.label(text=value)


ACTIVE_STATES = ("submitting", "queued", "running")


def _draw_job(layout, settings) -> None:
    """The scene's job (single or sequence): progress while it runs, else how it ended, and its error."""
    if settings.job_state in ACTIVE_STATES:
        layout.progress(factor=settings.job_progress, text=_progress_text(settings))
    elif settings.job_state:
        layout.label(text=f"Last job: {settings.job_state}")
    preview = panel_images.get(panel_images.live_key(settings.job_id)) if settings.job_preview else None
    if preview is not None:  # while the job runs, and after it failed: where it went wrong
        frame = f", frame {settings.job_preview_frame}" if settings.job_preview_frame >= 0 else ""
        layout.label(text=f"Preview{frame}: renders over targets", icon="IMAGE_DATA")
        layout.template_icon(icon_value=preview.icon_id, scale=10.0)
    if settings.last_error:
        box = layout.box()
        box.label(text="Error", icon="ERROR")
        for line in _wrap(settings.last_error, 48):
            box.label(text=line)


def _progress_text(settings) -> str:
    eta = f", {settings.job_eta:.0f} s left" if settings.job_eta >= 0 else ""
    return f"{settings.job_stage}{eta}"


def draw_status(self, context) -> None:
    """The running job's progress in the status bar, visible with the sidebar closed."""
    settings = context.scene.joker
    if settings.job_state in ACTIVE_STATES:
        self.layout.progress(factor=settings.job_progress, text=f"Joker: {_progress_text(settings)}")


def _wrap(text: str, width: int) -> list[str]:
    import textwrap
    return textwrap.wrap(text, width) or [""]


CLASSES = (JOKER_PT_main, JOKER_PT_rig, JOKER_PT_reference, JOKER_PT_prompt, JOKER_PT_views,
           JOKER_PT_generate, JOKER_PT_sequence, JOKER_PT_results)


def register() -> None:
    bpy.types.STATUSBAR_HT_header.append(draw_status)


def unregister() -> None:
    bpy.types.STATUSBAR_HT_header.remove(draw_status)

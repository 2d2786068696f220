"""The reference photo in Blender: loaded as an image, and an alignment check that shows
it behind the rig through a camera framed as the engine frames the reference view."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np
from bpy.props import BoolProperty, StringProperty

from joker_core.errors import JokerError

from .reports import reports_errors
from .rig_ops import poll_rig, rig_with_model
from .scene_cameras import apply_camera

ALIGNMENT_CAMERA = "Joker Alignment"
REFERENCE_SIZE = 512  # the reference crop of design.md §2


def load_reference(context, path: str) -> bpy.types.Image:
    """Load `path` as a Blender image and make it the scene's reference photo."""
    file = Path(bpy.path.abspath(path))
    if not path or not file.is_file():
        raise JokerError(f"reference photo {str(file)!r} does not exist", "choose a photo (JPEG or PNG)")
    try:
        image = bpy.data.images.load(str(file), check_existing=True)
    except RuntimeError as error:
        raise JokerError(f"Blender cannot read {file.name} as an image ({str(error).strip()})",
                         "save the photo as JPEG or PNG and choose it again") from error
    if 0 in image.size:  # a file Blender opened but could not decode
        bpy.data.images.remove(image)
        raise JokerError(f"{file.name} holds no pixels Blender can read", "save the photo as JPEG or PNG")
    context.scene.joker.reference_path = path
    return image


def setup_alignment_check(context) -> bpy.types.Object:
    """A camera on the front view of the rig with the reference photo as its background,
    made the scene camera (and shown in every 3D view) so photo and rig can be compared."""
    from joker_core.framing import head_view_rig

    _, armature, model = rig_with_model(context)
    image = load_reference(context, context.scene.joker.reference_path)
    context.view_layer.update()  # the rig's matrix_world, current
    cam_object = bpy.data.objects.get(ALIGNMENT_CAMERA)
    if cam_object is None or cam_object.type != "CAMERA":
        cam_object = bpy.data.objects.new(ALIGNMENT_CAMERA, bpy.data.cameras.new(ALIGNMENT_CAMERA))
        context.scene.collection.objects.link(cam_object)
    front = head_view_rig(model, size=REFERENCE_SIZE).camera(0.0, 0.0)
    apply_camera(front, cam_object, np.array(armature.matrix_world), context.scene)
    data = cam_object.data
    data.background_images.clear()
    background = data.background_images.new()
    background.image, background.alpha = image, 0.6
    background.display_depth, background.frame_method = "FRONT", "FIT"
    data.show_background_images = True
    context.scene.camera = cam_object
    for area in (context.screen.areas if context.screen else ()):
        if area.type == "VIEW_3D":
            area.spaces.active.region_3d.view_perspective = "CAMERA"
    return cam_object


class JOKER_OT_load_reference(bpy.types.Operator):
    """Choose the reference photo and load it as an image"""

    bl_idname = "joker.load_reference"
    bl_label = "Load Reference Photo"
    bl_options = {"REGISTER", "UNDO"}

    filepath: StringProperty(subtype="FILE_PATH", description="Photo of the person (JPEG or PNG)")
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    @reports_errors
    def execute(self, context):
        image = load_reference(context, self.filepath)
        self.report({"INFO"}, f"Reference {image.name}: {image.size[0]} x {image.size[1]} px")
        return {"FINISHED"}


class JOKER_OT_alignment_check(bpy.types.Operator):
    """Look at the rig through the front view camera with the reference photo behind it"""

    bl_idname = "joker.alignment_check"
    bl_label = "Alignment Check"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return poll_rig(cls, context, reference=True)

    @reports_errors
    def execute(self, context):
        setup_alignment_check(context)
        return {"FINISHED"}


CLASSES = (JOKER_OT_load_reference, JOKER_OT_alignment_check)

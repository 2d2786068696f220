"""The view rig made visible: one camera object per view, in their own collection."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import BoolProperty

from .reports import reports_errors
from .rig_ops import find_rig, rig_with_model
from .scene_cameras import pose_camera, view_cameras

VIEWS_COLLECTION = "Joker Views"
_DISPLAY_SIZE = 0.03  # metres: small enough to see the head between the cameras


def show_view_cameras(context) -> bpy.types.Collection:
    """(Re)create the view cameras of the Views panel's grid around the rig."""
    _, armature, model = rig_with_model(context)
    cameras = view_cameras(context.scene.joker, model)
    hide_view_cameras()
    context.view_layer.update()  # the rig's matrix_world, current
    rig_matrix = np.array(armature.matrix_world)
    collection = bpy.data.collections.new(VIEWS_COLLECTION)
    context.scene.collection.children.link(collection)
    for index, camera in enumerate(cameras):
        name = f"Joker View {index:03d}"
        obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        obj.data.display_size = _DISPLAY_SIZE
        pose_camera(camera, obj, rig_matrix)
        collection.objects.link(obj)
    return collection


def hide_view_cameras() -> None:
    """Remove the view cameras, their camera data and their collection."""
    collection = bpy.data.collections.get(VIEWS_COLLECTION)
    if collection is None:
        return
    for obj in list(collection.objects):
        data = obj.data
        bpy.data.objects.remove(obj)
        if data is not None and data.users == 0:
            bpy.data.cameras.remove(data)
    bpy.data.collections.remove(collection)


class JOKER_OT_show_cameras(bpy.types.Operator):
    """Show the view rig's cameras in the scene, or remove them"""

    bl_idname = "joker.show_cameras"
    bl_label = "Show View Cameras"
    bl_options = {"REGISTER", "UNDO"}

    show: BoolProperty(name="Show", default=True, description="Create the cameras (off: remove them)")

    @classmethod
    def poll(cls, context):
        if find_rig(context) is None and bpy.data.collections.get(VIEWS_COLLECTION) is None:
            cls.poll_message_set("Add a Joker head first")
            return False
        return True

    @reports_errors
    def execute(self, context):
        if not self.show:
            hide_view_cameras()
            return {"FINISHED"}
        collection = show_view_cameras(context)
        self.report({"INFO"}, f"{len(collection.objects)} view cameras in {collection.name}")
        return {"FINISHED"}


CLASSES = (JOKER_OT_show_cameras,)

"""Blender cameras from the shared Camera convention (joker_core.cameras).

Cameras are defined in the FLAME frame; the rig object carries FLAME_TO_BLENDER as its
transform, so a camera's Blender pose is rig.matrix_world @ c2w. Blender's camera angle
spans the larger image side (sensor fit AUTO), and its lens shift is in units of that side.
"""

from __future__ import annotations

import math

import bpy
import numpy as np
from mathutils import Matrix

from joker_core.cameras import Camera
from joker_core.errors import JokerError
from joker_core.head_model import HeadModel


def view_cameras(settings, model: HeadModel) -> list[Camera]:
    """The scene's view grid (Views panel) around `model`, framed as the engine frames it."""
    from joker_core.framing import head_view_rig
    rig = head_view_rig(model, size=settings.view_size)
    return rig.grid(settings.views_azimuth, settings.views_elevation, settings.azimuth_range,
                    settings.elevation_range)


def pose_camera(camera: Camera, cam_object: bpy.types.Object, rig_matrix: np.ndarray) -> None:
    """Set `cam_object`'s lens and pose to `camera` on a rig whose world matrix is `rig_matrix`."""
    if abs(camera.fx - camera.fy) > 1e-6 * camera.fx:
        raise JokerError("Blender cameras need square pixels (fx == fy)", "use cameras with equal fx and fy")
    side = max(camera.width, camera.height)
    data = cam_object.data
    data.type = "PERSP"
    data.sensor_fit = "AUTO"
    data.angle = 2.0 * math.atan(0.5 * side / camera.fx)
    data.shift_x = (camera.width / 2.0 - camera.cx) / side
    data.shift_y = (camera.cy - camera.height / 2.0) / side
    data.clip_start, data.clip_end = 0.01, 100.0
    cam_object.matrix_world = Matrix((np.asarray(rig_matrix) @ camera.c2w).tolist())


def apply_camera(camera: Camera, cam_object: bpy.types.Object, rig_matrix: np.ndarray,
                 scene: bpy.types.Scene) -> None:
    """Pose `cam_object` and set the scene's resolution so it renders exactly `camera`."""
    pose_camera(camera, cam_object, rig_matrix)
    scene.render.resolution_x, scene.render.resolution_y = camera.width, camera.height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0

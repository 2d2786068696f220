"""*Fit Rig to Reference*: the server fits the rig to the reference photo's face (POST
/v1/fit: landmarks, identity shape, the photo's expression and jaw, its camera), and the
rig takes the person's identity, and if asked the photo's expression and a camera that
sees the rig as the photo does. Blender runs neither torch nor dlib: the engine does.

The call waits for the answer (a second or two on a CPU; the first after the server starts
also loads dlib's models), like any quick operator."""

from __future__ import annotations

import bpy
import numpy as np
from bpy.props import BoolProperty

from joker_core.cameras import Camera
from joker_core.client import JokerClient

from . import model_cache, preferences
from .reference_ops import setup_alignment_check
from .reports import reports_errors
from .rig_build import RIG_TAG
from .rig_ops import poll_rig, rig_with_model
from .rig_state import write_params
from .scene_cameras import apply_camera
from .submission import reference_photo

FIT_TIMEOUT_S = 120.0  # the first fit after the server starts loads dlib's models


def fit_rig(context, expression: bool = True, camera: bool = True) -> dict:
    """Fit the scene's rig to its reference photo; the server's answer ({"model", "fit"})."""
    mesh, armature, model = rig_with_model(context)
    photo = reference_photo(context.scene.joker)
    prefs = preferences.get(context)
    source = armature.get(RIG_TAG, model_cache.DEMO_SOURCE)
    client = JokerClient(prefs.server_url, token=prefs.token or None, timeout=FIT_TIMEOUT_S)
    answer = client.fit(photo, model=None if source == model_cache.DEMO_SOURCE else source)
    fields = ("shape", "expression", "jaw_pose") if expression else ("shape",)
    write_params(mesh, armature, model, {field: answer["fit"]["params"][field] for field in fields})
    if camera:
        photo_camera = setup_alignment_check(context)  # the photo behind the rig, as the scene camera
        context.view_layer.update()
        apply_camera(Camera.from_dict(answer["fit"]["camera"]), photo_camera, np.array(armature.matrix_world),
                     context.scene)
    return answer


class JOKER_OT_fit_rig(bpy.types.Operator):
    """Fit the rig to the reference photo's face on the Joker server: the person's head shape, and the photo's expression and camera if asked"""

    bl_idname = "joker.fit_rig"
    bl_label = "Fit Rig to Reference"
    bl_options = {"REGISTER", "UNDO"}

    expression: BoolProperty(name="Photo's Expression", default=True,
                             description="Also take the photo's expression and jaw (else only the head shape)")
    camera: BoolProperty(name="Photo Camera", default=True,
                         description="Look at the rig through the photo's fitted camera, the photo behind it")

    @classmethod
    def poll(cls, context):
        return poll_rig(cls, context, reference=True)

    @reports_errors
    def execute(self, context):
        fit = fit_rig(context, self.expression, self.camera)["fit"]
        self.report({"INFO"}, f"Fitted: landmark residual {fit['residual_px']:.1f} px, "
                              f"confidence {fit['confidence']:.2f}")
        return {"FINISHED"}


CLASSES = (JOKER_OT_fit_rig,)

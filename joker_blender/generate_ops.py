"""Generate, cancel and re-import: the operators behind the Generate and Results panels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bpy

from joker_core.errors import JokerError
from joker_core.png import encode_png
from joker_core.protocol import JobSpec

from . import preferences
from .jobs import JobRunner, Message, Submission, drain, run_blocking
from .results import JOB_FOLDER_KEY, import_result
from .rig_ops import find_rig, rig_with_model
from .rig_state import read_params
from .scene_cameras import view_cameras
from .scene_normals import render_normal_maps

TIMER_INTERVAL_S = 0.1
_runners: dict[str, JobRunner] = {}  # scene name -> the job it is running


def build_submission(context) -> Submission:
    """Read the scene into a job: rig parameters, settings, in-scene normal maps."""
    settings, prefs = context.scene.joker, preferences.get(context)
    mesh, armature, model = rig_with_model(context)
    reference = Path(bpy.path.abspath(settings.reference_path))
    if not settings.reference_path or not reference.is_file():
        raise JokerError(f"reference photo {str(reference)!r} cannot be read", "choose a photo in the Reference panel")
    spec = {"rig": read_params(mesh, armature, model), "prompt": settings.prompt,
            "negative_prompt": settings.negative_prompt, "quality": settings.quality, "seed": settings.seed,
            "prior": {"name": settings.prior, "weights": settings.prior_weights or None},
            "views": {"grid": [settings.views_azimuth, settings.views_elevation],
                      "azimuth_range": settings.azimuth_range, "elevation_range": settings.elevation_range,
                      "size": settings.view_size}}
    normal_maps: dict[str, bytes] = {}
    if settings.send_normal_maps:
        cameras = view_cameras(settings, model)
        maps = render_normal_maps(context.scene, mesh, cameras, mode=settings.normal_mode)
        spec["blender_views"] = [{"camera": camera.to_dict(), "normal_map": f"view_{i:03d}.png"}
                                 for i, camera in enumerate(cameras)]
        normal_maps = {f"view_{i:03d}.png": encode_png(m.rgb) for i, m in enumerate(maps)}
    results_dir = Path(bpy.path.abspath(prefs.results_dir))
    return Submission(JobSpec.from_dict(spec), reference, normal_maps, results_dir, prefs.server_url,
                      prefs.token or None)


def _handler(scene_name: str):
    def handle(message: Message) -> None:
        scene = bpy.data.scenes.get(scene_name)
        if scene is None:  # the scene was deleted mid-job: nothing to update or import into
            return
        settings = scene.joker
        settings.job_id = message.job_id or settings.job_id
        if message.kind == "submitted":
            settings.job_state, settings.job_stage, settings.job_progress = "queued", "queued", 0.0
        elif message.kind == "progress":
            event = message.event
            settings.job_state, settings.job_stage, settings.job_progress = "running", event.stage, event.progress
            settings.job_eta = -1.0 if event.eta_s is None else event.eta_s
        elif message.kind == "done":
            settings.job_state, settings.job_progress = "succeeded", 1.0
            _import_files(scene, message.files, settings)
        else:
            settings.job_state, settings.last_error = message.kind, message.error
    return handle


def _import_files(scene, files, settings) -> None:
    glbs = [path for path in files if path.suffix == ".glb"]
    if not glbs:
        settings.last_error = "the job finished without a GLB result; see its log in the results folder"
        return
    rig = find_rig(bpy.context)
    try:
        import_result(scene, glbs[0], f"Joker {settings.job_id[:8]}", rig[1] if rig else None)
    except JokerError as error:
        settings.last_error = str(error)


def _tick(scene_name: str):
    runner = _runners.get(scene_name)
    if runner is None:
        return None
    drain(runner, _handler(scene_name))
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
    if runner.alive or not runner.messages.empty():
        return TIMER_INTERVAL_S
    _runners.pop(scene_name, None)
    return None


class JOKER_OT_generate(bpy.types.Operator):
    """Render the rig's normal maps, send a job to the Joker server and import the result"""

    bl_idname = "joker.generate"
    bl_label = "Generate Head"

    @classmethod
    def poll(cls, context):
        if context.scene.name in _runners:
            cls.poll_message_set("A job is running; cancel it or wait")
            return False
        if find_rig(context) is None:
            cls.poll_message_set("Add a Joker head first")
            return False
        if not context.scene.joker.reference_path:
            cls.poll_message_set("Choose a reference photo first")
            return False
        return True

    def execute(self, context):
        settings = context.scene.joker
        settings.last_error = ""
        try:
            runner = JobRunner(build_submission(context))
        except JokerError as error:
            settings.last_error = str(error)
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        scene_name = context.scene.name
        if bpy.app.background:
            run_blocking(runner, _handler(scene_name))
            if settings.job_state != "succeeded":
                self.report({"ERROR"}, settings.last_error or f"job {settings.job_state}")
                return {"CANCELLED"}
            return {"FINISHED"}
        _runners[scene_name] = runner.start()
        bpy.app.timers.register(lambda: _tick(scene_name), first_interval=TIMER_INTERVAL_S)
        return {"FINISHED"}


class JOKER_OT_cancel(bpy.types.Operator):
    """Cancel the running job (finished parts stay on the server)"""

    bl_idname = "joker.cancel"
    bl_label = "Cancel Job"

    @classmethod
    def poll(cls, context):
        return context.scene.name in _runners

    def execute(self, context):
        _runners[context.scene.name].cancel()
        return {"FINISHED"}


class JOKER_OT_reimport(bpy.types.Operator):
    """Import the active result again from its job folder"""

    bl_idname = "joker.reimport"
    bl_label = "Re-import Result"

    @classmethod
    def poll(cls, context):
        return context.active_object is not None and JOB_FOLDER_KEY in context.active_object

    def execute(self, context):
        folder = Path(context.active_object[JOB_FOLDER_KEY])
        glbs = sorted(folder.glob("*.glb"))
        rig = find_rig(context)
        try:
            if not glbs:
                raise JokerError(f"no GLB in {folder}", "generate again; the job folder was emptied")
            import_result(context.scene, glbs[0], context.active_object.name, rig[1] if rig else None)
        except JokerError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        return {"FINISHED"}


class JOKER_OT_open_folder(bpy.types.Operator):
    """Open the active result's job folder in the file manager"""

    bl_idname = "joker.open_folder"
    bl_label = "Open Job Folder"

    @classmethod
    def poll(cls, context):
        return context.active_object is not None and JOB_FOLDER_KEY in context.active_object

    def execute(self, context):
        folder = context.active_object[JOB_FOLDER_KEY]
        if sys.platform == "win32":
            os.startfile(folder)  # noqa: S606 - opening a folder the user produced
        else:
            subprocess.Popen(["open" if sys.platform == "darwin" else "xdg-open", folder])
        return {"FINISHED"}


CLASSES = (JOKER_OT_generate, JOKER_OT_cancel, JOKER_OT_reimport, JOKER_OT_open_folder)

"""Generate, cancel and re-import: the operators behind the Generate and Results panels,
and the job's life on the main thread (timer ticks, or blocking in background mode)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import bpy
from bpy.app.handlers import persistent

from joker_core.errors import JokerError

from . import panel_images, summary
from .animated_sequence import is_animated
from .jobs import JobRunner, Message, drain, run_blocking
from .results import JOB_FOLDER_KEY, SOURCE_KEY, head_to_import, import_result
from .reports import reports_errors
from .rig_ops import find_rig, poll_rig
from .submission import build_submission

TIMER_INTERVAL_S = 0.1
Handle = Callable[[Message], None]
_runners: dict[str, tuple[JobRunner, Handle]] = {}  # scene name -> the job it follows, and what applies its messages
_timers: dict[str, Callable[[], float | None]] = {}  # scene name -> its timer callback, removed on unregister


def job_handler(scene_name: str, on_done: Callable[[bpy.types.Scene, Message], None],
                on_frame: Callable[[bpy.types.Scene, Message], None] | None = None) -> Handle:
    """What each worker message does to the scene, on the main thread: the job's state for
    the panels; `on_done` imports the finished job, `on_frame` a sequence's frame."""
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
        elif message.kind == "preview":
            _show_preview(settings, message)
        elif message.kind == "frame":
            if on_frame is not None:
                on_frame(scene, message)
        elif message.kind == "done":
            settings.job_state, settings.job_progress = "succeeded", 1.0
            _release_preview(settings)  # the result and its turntable take its place
            on_done(scene, message)
        else:  # failed, interrupted or cancelled; a cancel the user asked for is no error.
            # The last preview stays in the panel, beside the error: where it went wrong.
            settings.job_state = message.kind
            settings.last_error = "" if message.kind == "cancelled" else message.error
    return handle


def _show_preview(settings, message: Message) -> None:
    """The job's newest preview into the Generate panel (an unreadable one leaves the last)."""
    try:
        panel_images.show(panel_images.live_key(message.job_id), message.files[0])
    except JokerError:
        return
    settings.job_preview = str(message.files[0])
    settings.job_preview_frame = -1 if message.frame is None else message.frame


def _release_preview(settings) -> None:
    if settings.job_id:
        panel_images.release(panel_images.live_key(settings.job_id))
    settings.job_preview, settings.job_preview_frame = "", -1


def _import_files(rig_name: str, head_mesh: str) -> Callable[[bpy.types.Scene, Message], None]:
    """A single job's end: its head (the one `head_mesh` chooses) onto the rig it was made from."""
    def on_done(scene, message: Message) -> None:
        settings = scene.joker
        glbs = sorted(path for path in message.files if path.suffix == ".glb")  # head.glb before head_rig.glb
        if not glbs:
            settings.last_error = "the job finished without a GLB result; see its files in the results folder"
            return
        rig = bpy.data.objects.get(rig_name)
        if rig is None or rig.name not in scene.objects:
            settings.last_error = (f"the rig {rig_name!r} was deleted during the job, so the head was imported "
                                   "where an unmoved rig stands")
            rig = None
        try:
            head = import_result(scene, head_to_import(glbs[0], head_mesh),
                                 f"Joker f{scene.frame_current:04d} {settings.job_id[:8]}",
                                 rig.matrix_world if rig else None)
            settings.last_result = head.name
            summary.attach(head)
        except JokerError as error:
            settings.last_error = str(error)
    return on_done


def tick(scene_name: str) -> float | None:
    """The timer callback: apply what the worker reported, redraw, and come back later
    while the job runs (None ends the timer)."""
    runner, handle = _runners.get(scene_name, (None, None))
    if runner is None:
        return None
    drain(runner, handle)
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"VIEW_3D", "STATUSBAR"}:
                area.tag_redraw()
    if runner.alive or not runner.messages.empty():
        return TIMER_INTERVAL_S
    _runners.pop(scene_name, None)
    return None


def _reset_job_state(settings) -> None:
    _release_preview(settings)  # the previous job's, failed or cancelled
    settings.job_id, settings.job_state, settings.job_stage = "", "submitting", "submitting"
    settings.job_progress, settings.job_eta, settings.last_error, settings.last_result = 0.0, -1.0, "", ""


def follow(context, runner: JobRunner, handle: Handle) -> JobRunner:
    """Start `runner`'s worker thread; a timer applies its messages with `handle`."""
    _reset_job_state(context.scene.joker)
    scene_name = context.scene.name
    _runners[scene_name] = (runner.start(), handle)
    _remove_timer(scene_name)
    _timers[scene_name] = functools.partial(tick, scene_name)
    bpy.app.timers.register(_timers[scene_name], first_interval=TIMER_INTERVAL_S)
    return runner


def _remove_timer(scene_name: str) -> None:
    timer = _timers.pop(scene_name, None)
    if timer is not None and bpy.app.timers.is_registered(timer):
        bpy.app.timers.unregister(timer)


def follow_blocking(context, runner: JobRunner, handle: Handle) -> None:
    """Run `runner` to its end on this thread (background mode and scripts); JokerError
    if the job did not succeed or its result could not be imported as asked."""
    settings = context.scene.joker
    _reset_job_state(settings)
    run_blocking(runner, handle)
    if settings.job_state != "succeeded":
        raise JokerError(settings.last_error or f"job {settings.job_id} {settings.job_state}",
                         None if settings.last_error else "see the job on the server")
    if settings.last_error:  # succeeded, but a result could not be imported as asked
        raise JokerError(settings.last_error)


def _single_handler(context, submission) -> Handle:
    scene = context.scene
    return job_handler(scene.name, _import_files(submission.rig, scene.joker.head_mesh))


def start_job(context) -> JobRunner:
    """Send the scene's job from a worker thread; a timer applies its progress and result."""
    submission = build_submission(context)
    return follow(context, JobRunner(submission), _single_handler(context, submission))


def run_job(context) -> bpy.types.Object:
    """Run the scene's job to its end on this thread and return the imported head."""
    submission = build_submission(context)
    follow_blocking(context, JobRunner(submission), _single_handler(context, submission))
    return bpy.data.objects[context.scene.joker.last_result]


def running_job(scene: bpy.types.Scene) -> JobRunner | None:
    """The job the scene is following, if any."""
    return _runners.get(scene.name, (None, None))[0]


@persistent
def _forget_jobs(*_args) -> None:
    """Another .blend is being opened: stop following its jobs, so no result lands in the
    wrong file (the server finishes them; their files stay in the results folder)."""
    _runners.clear()
    panel_images.release_all()


class JobOperator:
    """An operator that sends a job: refused while the scene follows one; in background
    mode (scripts) it blocks until the result is imported, else a timer follows it."""

    @classmethod
    def poll(cls, context):
        if running_job(context.scene) is not None:
            cls.poll_message_set("A job is running; cancel it or wait")
            return False
        return poll_rig(cls, context, reference=True)

    run: Callable  # (context): the job to its end on this thread
    start: Callable  # (context): the job followed by a timer

    @reports_errors
    def execute(self, context):
        try:
            (self.run if bpy.app.background else self.start)(context)
        except JokerError as error:
            context.scene.joker.last_error = str(error)
            raise
        return {"FINISHED"}


class JOKER_OT_generate(JobOperator, bpy.types.Operator):
    """Render the rig's normal maps, send a job to the Joker server and import the result"""

    bl_idname = "joker.generate"
    bl_label = "Generate Head"
    run, start = staticmethod(run_job), staticmethod(start_job)


class JOKER_OT_cancel(bpy.types.Operator):
    """Cancel the running job (finished parts stay on the server)"""

    bl_idname = "joker.cancel"
    bl_label = "Cancel Job"

    @classmethod
    def poll(cls, context):
        if running_job(context.scene) is None:
            cls.poll_message_set("No job is running in this scene")
            return False
        return True

    def execute(self, context):
        running_job(context.scene).cancel()
        return {"FINISHED"}


class _OnActiveResult:
    @classmethod
    def poll(cls, context):
        if context.active_object is None or JOB_FOLDER_KEY not in context.active_object:
            cls.poll_message_set("Select a generated head in the Joker Results collection")
            return False
        return True


class JOKER_OT_reimport(_OnActiveResult, bpy.types.Operator):
    """Import the active result again from its job folder"""

    bl_idname = "joker.reimport"
    bl_label = "Re-import Result"

    @reports_errors
    def execute(self, context):
        active = context.active_object
        if is_animated(active):  # its keys came from many frames' files
            raise JokerError(f"{active.name} is a sequence's animated head, made from every frame's file",
                             "regenerate a frame to replace its key, or import the job's sequence.glb")
        folder = Path(active[JOB_FOLDER_KEY])
        glbs = [folder / active[SOURCE_KEY]] if SOURCE_KEY in active else sorted(folder.glob("*.glb"))
        if not glbs or not glbs[0].is_file():
            raise JokerError(f"no GLB in {folder}", "generate again; the job folder was emptied")
        rig = find_rig(context)
        head = import_result(context.scene, glbs[0], active.name, rig[1].matrix_world if rig else None)
        summary.attach(head)
        return {"FINISHED"}


class JOKER_OT_show_turntable(bpy.types.Operator):
    """Show the turntable of the result in the Results panel (read from its job folder)"""

    bl_idname = "joker.show_turntable"
    bl_label = "Show Turntable"

    @classmethod
    def poll(cls, context):
        if summary.shown_head(context) is None:
            cls.poll_message_set("Select a generated head in the Joker Results collection")
            return False
        return True

    @reports_errors
    def execute(self, context):
        summary.show_turntable(summary.shown_head(context)[JOB_FOLDER_KEY])
        return {"FINISHED"}


class JOKER_OT_open_folder(_OnActiveResult, bpy.types.Operator):
    """Open the active result's job folder in the file manager"""

    bl_idname = "joker.open_folder"
    bl_label = "Open Job Folder"

    def execute(self, context):
        folder = context.active_object[JOB_FOLDER_KEY]
        if sys.platform == "win32":
            os.startfile(folder)  # noqa: S606 - opening a folder the user produced
        else:
            subprocess.Popen(["open" if sys.platform == "darwin" else "xdg-open", folder])
        return {"FINISHED"}


CLASSES = (JOKER_OT_generate, JOKER_OT_cancel, JOKER_OT_reimport, JOKER_OT_show_turntable, JOKER_OT_open_folder)


def register() -> None:
    bpy.app.handlers.load_pre.append(_forget_jobs)


def unregister() -> None:
    # A disabled add-on leaves no timer calling into it. (The bpy 4.2 module also crashes at
    # exit on a timer still registered; Blender disables its add-ons before it exits.)
    for scene_name in list(_timers):
        _remove_timer(scene_name)
    _runners.clear()
    if _forget_jobs in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_forget_jobs)

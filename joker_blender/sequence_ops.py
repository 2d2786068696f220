"""Generate Sequence and Regenerate Frame: one sequence job over a frame range (or one
frame of it again), each frame imported the moment it arrives into the sequence's
collection: as its own head keyed to show on its frames (Per-frame meshes), or as a shape
key of the sequence's one animated head (Animated object; sequence_results)."""

from __future__ import annotations

import bpy

from joker_core.errors import JokerError
from joker_core.protocol import RIG_HEAD_GLB

from . import summary
from .animated_sequence import follow_rig, replace_frame, start_animated
from .generate_ops import JobOperator, follow, follow_blocking, job_handler
from .jobs import Message, SequenceRunner
from .sequence_results import (HOLD_KEY, animated_head, frame_shown_at, generated_frames, is_sequence,
                               new_sequence, place_frame)
from .submission import build_sequence_submission, sequence_frames


class _FrameImports:
    """Puts a sequence job's frames into its collection as they arrive; a new sequence's
    collection is made with its first frame (so a job that never starts leaves none).
    `animated`: the frames go into one animated head (followed by the armature `rig`)."""

    def __init__(self, collection_name: str, frame_step: int, placements: dict, animated: bool, rig: str):
        self.collection_name, self.frame_step, self.placements = collection_name, frame_step, placements
        self.animated, self.rig = animated, rig

    def on_frame(self, scene: bpy.types.Scene, message: Message) -> None:
        settings = scene.joker
        collection = bpy.data.collections.get(self.collection_name) if self.collection_name else None
        if not is_sequence(collection):  # a new sequence, or the user deleted it mid-job
            collection = new_sequence(scene, f"Joker Sequence {message.job_id[:8]}", self.frame_step)
            self.collection_name = collection.name
        settings.sequence = collection.name
        try:
            head = (self._animate if self.animated else self._place)(scene, collection, message)
            settings.last_result = head.name
            summary.attach(head, turntable=False)  # one heavy step per frame: its turntable on request
        except JokerError as error:
            settings.last_error = str(error)

    def _place(self, scene, collection: bpy.types.Collection, message: Message) -> bpy.types.Object:
        return place_frame(scene, collection, message.frame, message.files[0],
                           f"Joker f{message.frame:04d} {message.job_id[:8]}", self.placements.get(message.frame))

    def _animate(self, scene, collection: bpy.types.Collection, message: Message) -> bpy.types.Object:
        """The frame's rig-topology head into the animated head's key for it (the first
        frame makes the animated head)."""
        glb = message.files[0].with_name(RIG_HEAD_GLB)
        if not glb.is_file():
            raise JokerError(f"frame {message.frame} came without {RIG_HEAD_GLB} (the rig's topology)",
                             "choose Per-frame meshes in the Sequence panel, or update the server")
        head = animated_head(collection)
        if head is not None:
            replace_frame(scene, head, message.frame, glb)
            return head
        head = start_animated(scene, glb, message.frame, f"Joker Animated {message.job_id[:8]}", collection)
        rig = bpy.data.objects.get(self.rig)
        if rig is None or rig.name not in scene.objects:
            raise JokerError(f"the rig {self.rig!r} was deleted during the job, so the animated head stands "
                             "where an unmoved rig stands", "parent it to a rig by hand")
        follow_rig(head, rig)
        return head

    def on_done(self, scene: bpy.types.Scene, message: Message) -> None:
        """Every frame was handed over before the end: nothing is left to import."""


def _sequence_job(context, frames: range, collection: bpy.types.Collection | None):
    request = build_sequence_submission(context, frames)
    # A new sequence takes the panel's choice; a regenerated frame, its sequence's kind.
    animated = (animated_head(collection) is not None if collection
                else context.scene.joker.sequence_result == "animated")
    imports = _FrameImports(collection.name if collection else "",
                            int(collection[HOLD_KEY]) if collection else frames.step, request.placements,
                            animated, request.submission.rig)
    handle = job_handler(context.scene.name, imports.on_done, imports.on_frame)
    return SequenceRunner(request.submission), handle, imports


def start_sequence(context) -> SequenceRunner:
    """Send the scene's frame range as one sequence job; a timer imports each frame as it arrives."""
    runner, handle, _ = _sequence_job(context, sequence_frames(context.scene), None)
    return follow(context, runner, handle)


def run_sequence(context) -> bpy.types.Collection:
    """The same, to its end on this thread; returns the sequence's collection."""
    runner, handle, imports = _sequence_job(context, sequence_frames(context.scene), None)
    follow_blocking(context, runner, handle)
    return bpy.data.collections[imports.collection_name]


def _frame_to_regenerate(context) -> tuple[range, bpy.types.Collection]:
    """The generated frame whose head shows at the current frame, in the scene's sequence."""
    scene = context.scene
    collection = bpy.data.collections.get(scene.joker.sequence)
    if not is_sequence(collection) or not generated_frames(collection):
        raise JokerError("the scene has no generated sequence", "run Generate Sequence first")
    frame = frame_shown_at(collection, scene.frame_current)
    if frame is None:
        frames = generated_frames(collection)
        raise JokerError(f"no head of {collection.name} shows at frame {scene.frame_current}",
                         f"go to a frame from {frames[0]} to {frames[-1]}")
    return range(frame, frame + 1), collection


def start_regenerate(context) -> SequenceRunner:
    """Generate again the frame whose head shows now (the rig as keyed at that frame); its
    new head replaces the old one when it arrives."""
    runner, handle, _ = _sequence_job(context, *_frame_to_regenerate(context))
    return follow(context, runner, handle)


def run_regenerate(context) -> bpy.types.Object:
    """The same, to its end on this thread; returns the new head."""
    runner, handle, _ = _sequence_job(context, *_frame_to_regenerate(context))
    follow_blocking(context, runner, handle)
    return bpy.data.objects[context.scene.joker.last_result]


class JOKER_OT_generate_sequence(JobOperator, bpy.types.Operator):
    """Send the frame range as one sequence job (the rig and its normal maps at every frame);
    each head is imported as it arrives and keyed to show on its frames"""

    bl_idname = "joker.generate_sequence"
    bl_label = "Generate Sequence"
    run, start = staticmethod(run_sequence), staticmethod(start_sequence)


class JOKER_OT_regenerate_frame(JobOperator, bpy.types.Operator):
    """Generate again the sequence frame whose head shows now; only that head is replaced"""

    bl_idname = "joker.regenerate_frame"
    bl_label = "Regenerate Frame"
    run, start = staticmethod(run_regenerate), staticmethod(start_regenerate)

    @classmethod
    def poll(cls, context):
        if not super().poll(context):
            return False
        collection = bpy.data.collections.get(context.scene.joker.sequence)
        if not is_sequence(collection) or frame_shown_at(collection, context.scene.frame_current) is None:
            cls.poll_message_set("No generated sequence head shows at this frame")
            return False
        return True


CLASSES = (JOKER_OT_generate_sequence, JOKER_OT_regenerate_frame)

"""A generated sequence in the scene, in the sequence's own collection: one head per
generated frame, with visibility keyed so that exactly one head shows at each scene frame,
or ONE animated head with a shape key per generated frame (animated_sequence).

Frame N's head shows from N until the next generated frame (a frame step > 1 holds it);
the last head holds for one step. Visibility keys are CONSTANT, so nothing blends between
per-frame heads; an animated head's keys blend linearly.
"""

from __future__ import annotations

from pathlib import Path

import bpy
from mathutils import Matrix

from .animated_sequence import frame_keys, is_animated
from .animation import assigned_fcurves
from .results import import_result, results_collection

FRAME_KEY = "joker_frame"       # on a head: the scene frame it was generated for
HOLD_KEY = "joker_frame_step"   # on a sequence collection: how many frames its last head holds
VISIBILITY = ("hide_viewport", "hide_render")


def new_sequence(scene: bpy.types.Scene, name: str, frame_step: int) -> bpy.types.Collection:
    """An empty sequence collection inside the results collection."""
    collection = bpy.data.collections.new(name)
    results_collection(scene).children.link(collection)
    collection[HOLD_KEY] = frame_step
    return collection


def is_sequence(collection: bpy.types.Collection | None) -> bool:
    return collection is not None and HOLD_KEY in collection


def frame_heads(collection: bpy.types.Collection) -> dict[int, bpy.types.Object]:
    """Generated frame -> its head."""
    return {int(obj[FRAME_KEY]): obj for obj in collection.objects if FRAME_KEY in obj}


def animated_head(collection: bpy.types.Collection) -> bpy.types.Object | None:
    """The sequence's animated head, if it is one (Animated object)."""
    return next((obj for obj in collection.objects if is_animated(obj)), None)


def generated_frames(collection: bpy.types.Collection) -> list[int]:
    """The sequence's generated frames, whether per-frame heads or an animated head's keys."""
    animated = animated_head(collection)
    return sorted(set(frame_heads(collection)) | set(frame_keys(animated) if animated else ()))


def _shown_ranges(collection: bpy.types.Collection) -> dict[int, tuple[int, int]]:
    """Generated frame -> the scene frames [start, end) its head shows on."""
    frames = generated_frames(collection)
    ends = frames[1:] + [frames[-1] + int(collection[HOLD_KEY])] if frames else []
    return {frame: (frame, end) for frame, end in zip(frames, ends)}


def frame_shown_at(collection: bpy.types.Collection, scene_frame: int) -> int | None:
    """The generated frame whose head shows at `scene_frame`, if any."""
    return next((frame for frame, (start, end) in _shown_ranges(collection).items() if start <= scene_frame < end),
                None)


def place_frame(scene: bpy.types.Scene, collection: bpy.types.Collection, frame: int, glb: Path, name: str,
                rig_matrix: Matrix | None) -> bpy.types.Object:
    """Import frame `frame`'s head into the sequence, replacing the head it had for that
    frame (only once the new one is in), and key the visibility it changes."""
    old = frame_heads(collection).get(frame)
    head = import_result(scene, glb, name, rig_matrix, collection)
    if old is not None:
        _remove(old)
    head[FRAME_KEY] = frame
    ranges, heads = _shown_ranges(collection), frame_heads(collection)
    frames = sorted(ranges)
    position = frames.index(frame)
    for changed in frames[max(0, position - 1):position + 1]:  # the head before now ends where this one starts
        _key_visibility(heads[changed], *ranges[changed], scene.frame_current)
    return head


def _key_visibility(head: bpy.types.Object, start: int, end: int, current: int) -> None:
    """Hidden before `start`, shown on [start, end), hidden from `end` on. (Blender keys
    booleans with CONSTANT interpolation; the tests check it.)"""
    for fcurve in _visibility_fcurves(head):  # its keys of an earlier, longer or shorter, range
        fcurve.keyframe_points.clear()
    for frame, hidden in ((start - 1, True), (start, False), (end, True)):
        for prop in VISIBILITY:
            setattr(head, prop, hidden)
            head.keyframe_insert(prop, frame=frame)
    for prop in VISIBILITY:  # what the keys say at the frame the scene is on
        setattr(head, prop, not start <= current < end)


def _visibility_fcurves(obj: bpy.types.Object) -> list[bpy.types.FCurve]:
    return [fcurve for fcurve in assigned_fcurves(obj) if fcurve.data_path in VISIBILITY]


def _remove(head: bpy.types.Object) -> None:
    """A replaced head, with the data only it used."""
    mesh = head.data
    action = head.animation_data.action if head.animation_data else None
    bpy.data.objects.remove(head)
    if mesh is not None and mesh.users == 0:
        bpy.data.meshes.remove(mesh)
    if action is not None and action.users == 0:
        bpy.data.actions.remove(action)

"""A generated sequence as ONE object: the rig's topology with a shape key per generated
frame (the engine's sequence.glb), keyed so that each scene frame shows its head.

Key `frame_NNNN` has value 1 at scene frame NNNN and 0 at the generated frames either side,
LINEAR in between, so a step between generated frames blends the two heads instead of
holding one. The basis is the first frame's head and its own key moves nothing, so the
weights always sum to one between keys. Re-generating a frame replaces only its key's
coordinates (or adds a key for a new frame and re-keys its neighbours).

A sequence job builds the same object as its frames arrive (`start_animated` from the first
frame's head_rig.glb, `replace_frame` for each next one), parented to the rig's armature so
it stands where the rig stands at every frame.
"""

from __future__ import annotations

import re
from pathlib import Path

import bpy
from mathutils import Matrix

from joker_core.conventions import BLENDER_TO_FLAME
from joker_core.errors import JokerError

from .animation import assigned_fcurves
from .results import import_result

KEY_NAME = re.compile(r"frame_(-?\d+)")
ANIMATED_KEY = "joker_animated_sequence"  # on the object: it is a sequence's animated head


def key_name(frame: int) -> str:
    return f"frame_{frame:04d}"


def frame_keys(head: bpy.types.Object) -> dict[int, bpy.types.ShapeKey]:
    """Generated frame -> its shape key."""
    keys = head.data.shape_keys.key_blocks if head.data.shape_keys else []
    return {int(match.group(1)): key for key in keys if (match := KEY_NAME.fullmatch(key.name))}


def import_animated_sequence(scene: bpy.types.Scene, glb: Path, name: str, rig_matrix: Matrix | None,
                             collection: bpy.types.Collection | None = None) -> bpy.types.Object:
    """Import sequence.glb as one object with a shape key per frame, keyed on the scene's
    frames (not the glTF animation's seconds, which depend on a frame rate)."""
    head = import_result(scene, glb, name, rig_matrix, collection)
    if not frame_keys(head):
        bpy.data.objects.remove(head)
        raise JokerError(f"{glb.name} holds no per-frame shape keys", "import the sequence's sequence.glb")
    _drop_imported_animation(head)
    head[ANIMATED_KEY] = True
    key_frames(head)
    return head


def start_animated(scene: bpy.types.Scene, glb: Path, frame: int, name: str,
                   collection: bpy.types.Collection | None = None) -> bpy.types.Object:
    """A new animated head from generated frame `frame`'s head_rig.glb: its mesh is the
    basis, and key frame_NNNN (which moves nothing) shows it, as in an imported sequence.glb."""
    head = import_result(scene, glb, name, None, collection)
    head.shape_key_add(name="Basis", from_mix=False)
    head.shape_key_add(name=key_name(frame), from_mix=False)
    head[ANIMATED_KEY] = True
    key_frames(head)
    return head


def is_animated(obj: bpy.types.Object) -> bool:
    return bool(obj.get(ANIMATED_KEY))


def follow_rig(head: bpy.types.Object, armature: bpy.types.Object) -> None:
    """Parent an animated head (imported unplaced, in the rig's own frame) to the rig's
    armature: at every scene frame it stands where the rig stands, however the rig moves."""
    head.parent = armature
    head.matrix_parent_inverse = Matrix.Identity(4)
    head.matrix_basis = Matrix(BLENDER_TO_FLAME.tolist()) @ head.matrix_basis


def set_frame(head: bpy.types.Object, frame: int, coordinates) -> None:
    """Give generated frame `frame` these vertex coordinates (the object's local space, its
    vertex order; a flat sequence of 3 x vertex count floats): only its key changes, or a new
    key is added and the keys re-timed."""
    key = frame_keys(head).get(frame)
    if key is None:
        key = head.shape_key_add(name=key_name(frame), from_mix=False)
        key.data.foreach_set("co", coordinates)
        key_frames(head)
    else:
        key.data.foreach_set("co", coordinates)
    head.data.update()


def replace_frame(scene: bpy.types.Scene, head: bpy.types.Object, frame: int, glb: Path) -> None:
    """Frame `frame` re-generated: take its head (head_rig.glb: the same topology and vertex
    order) into that frame's key, leaving every other key as it was."""
    single = import_result(scene, glb, f"{head.name} frame {frame}", None)
    try:
        if len(single.data.vertices) != len(head.data.vertices):
            raise JokerError(f"{glb.name} has {len(single.data.vertices)} vertices, the animated head "
                             f"{len(head.data.vertices)}", "re-generate the frame with rig topology")
        coordinates = [0.0] * (3 * len(single.data.vertices))
        single.data.vertices.foreach_get("co", coordinates)
        set_frame(head, frame, coordinates)
    finally:
        mesh = single.data
        bpy.data.objects.remove(single)
        if mesh.users == 0:
            bpy.data.meshes.remove(mesh)


def key_frames(head: bpy.types.Object) -> None:
    """Key every frame key: 1 at its frame, 0 at the generated frames before and after."""
    keys = frame_keys(head)
    frames = sorted(keys)
    for position, frame in enumerate(frames):
        key = keys[frame]
        path = key.path_from_id("value")
        _clear_keys(head.data.shape_keys, path)
        neighbours = frames[max(0, position - 1):position] + frames[position + 1:position + 2]
        for at, value in [(frame, 1.0)] + [(other, 0.0) for other in neighbours]:
            key.value = value
            key.keyframe_insert("value", frame=at)
    for fcurve in assigned_fcurves(head.data.shape_keys):
        for point in fcurve.keyframe_points:
            point.interpolation = "LINEAR"


def _clear_keys(owner, path: str) -> None:
    for fcurve in assigned_fcurves(owner):
        if fcurve.data_path == path:
            fcurve.keyframe_points.clear()


def _drop_imported_animation(head: bpy.types.Object) -> None:
    """The glTF importer keys the weights in seconds at its own rate; we key scene frames."""
    for owner in (head, head.data.shape_keys):
        data = getattr(owner, "animation_data", None)
        if data is not None and data.action is not None:
            action = data.action
            data.action = None
            if action.users == 0:
                bpy.data.actions.remove(action)

"""A job as the scene describes it: rig parameters, settings and in-scene normal maps;
for a sequence, those of every frame of a range."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import bpy
from mathutils import Matrix

from joker_core.cameras import Camera
from joker_core.errors import JokerError
from joker_core.files import atomic_directory
from joker_core.png import encode_png
from joker_core.protocol import MAX_FRAMES, JobSpec, SequenceSpec, frame_folder_name
from joker_core.view_folder import FolderView, write_view_folder

from . import preferences
from .jobs import Submission
from .prompt_track import frame_prompt
from .rig_ops import rig_with_model
from .rig_state import read_params
from .scene_cameras import view_cameras
from .scene_normals import NormalMap, render_normal_maps


def render_views(context, mesh, model) -> tuple[list[Camera], list[NormalMap]]:
    """The scene's view cameras and the rig's normal maps from each, rendered here."""
    settings = context.scene.joker
    cameras = view_cameras(settings, model)
    return cameras, render_normal_maps(context.scene, mesh, cameras, mode=settings.normal_mode)


def write_views(context, folder: Path) -> Path:
    """The normal maps a job would send, as a folder laid out like `joker render-normals`."""
    mesh, armature, model = rig_with_model(context)
    cameras, maps = render_views(context, mesh, model)
    description = {"source": "blender", "mode": context.scene.joker.normal_mode, "model": model.name,
                   "rig": read_params(mesh, armature, model)}
    with atomic_directory(folder, overwrite=True) as staging:
        write_view_folder(staging, [FolderView(camera, normal_map.rgb, normal_map.mask)
                                    for camera, normal_map in zip(cameras, maps)], description)
    return folder


def results_folder(setting: str) -> Path:
    """The preference's folder; one relative to an unsaved .blend (which has no folder yet)
    goes to Blender's user data folder instead of wherever Blender was started."""
    if setting.startswith("//") and not bpy.data.filepath:
        return Path(bpy.utils.user_resource("DATAFILES", path="joker_results", create=True))
    return Path(bpy.path.abspath(setting))


def reference_photo(settings) -> Path:
    """The scene's reference photo (settings: scene.joker), checked to be a readable file."""
    reference = Path(bpy.path.abspath(settings.reference_path))
    if not settings.reference_path or not reference.is_file():
        raise JokerError(f"reference photo {str(reference)!r} cannot be read", "choose a photo in the Reference panel")
    return reference


def _shared_settings(settings) -> dict:
    """The job's settings apart from the rig and normal maps (a sequence's frames share them)."""
    return {"prompt": settings.prompt, "negative_prompt": settings.negative_prompt, "quality": settings.quality,
            "seed": settings.seed, "prior": {"name": settings.prior, "weights": settings.prior_weights or None},
            "views": {"grid": [settings.views_azimuth, settings.views_elevation],
                      "azimuth_range": settings.azimuth_range, "elevation_range": settings.elevation_range,
                      "size": settings.view_size}}


def _posed(context, mesh, armature, model, with_normal_maps: bool, prefix: str = "") -> tuple[dict, dict[str, bytes]]:
    """The rig as it stands now: its parameters and, if asked, its normal maps rendered
    here (uploaded under `prefix`view_NNN.png; without them the server renders its own)."""
    spec: dict = {"rig": read_params(mesh, armature, model)}
    normal_maps: dict[str, bytes] = {}
    if with_normal_maps:
        cameras, maps = render_views(context, mesh, model)
        names = [f"{prefix}view_{i:03d}.png" for i in range(len(cameras))]
        spec["blender_views"] = [{"camera": camera.to_dict(), "normal_map": name}
                                 for camera, name in zip(cameras, names)]
        normal_maps = {name: encode_png(normal_map.rgb) for name, normal_map in zip(names, maps)}
    return spec, normal_maps


def _submission(context, spec: JobSpec | SequenceSpec, reference: Path, normal_maps: dict[str, bytes],
                armature) -> Submission:
    prefs = preferences.get(context)
    return Submission(spec, reference, normal_maps, results_folder(prefs.results_dir), prefs.server_url,
                      prefs.token or None, rig=armature.name)


def build_submission(context) -> Submission:
    """Read the scene into a job: rig parameters, settings, in-scene normal maps."""
    settings = context.scene.joker
    mesh, armature, model = rig_with_model(context)
    reference = reference_photo(settings)
    posed, normal_maps = _posed(context, mesh, armature, model, settings.send_normal_maps)
    rig_topology = settings.head_mesh != "marching_cubes"  # a head to choose from, or the one asked for
    spec = JobSpec.from_dict({**posed, **_shared_settings(settings), "rig_topology": rig_topology})
    return _submission(context, spec, reference, normal_maps, armature)


def sequence_frames(scene: bpy.types.Scene) -> range:
    """The scene frames a sequence generates: the scene's frame range and step, or the
    range and step chosen in the Sequence settings."""
    settings = scene.joker
    if settings.sequence_use_scene_range:
        start, end, step = scene.frame_start, scene.frame_end, scene.frame_step
    else:
        start, end, step = settings.sequence_start, settings.sequence_end, settings.sequence_step
    if end < start:
        raise JokerError(f"the frame range {start} to {end} is empty (it ends before it starts)",
                         "set the end frame at or after the start frame")
    if step < 1:
        raise JokerError(f"frame step {step} does not advance", "use a frame step of 1 or more")
    frames = range(start, end + 1, step)
    if len(frames) > MAX_FRAMES:
        raise JokerError(f"{len(frames)} frames are more than one sequence job takes ({MAX_FRAMES})",
                         "choose a shorter range or a larger frame step")
    return frames


@dataclass
class SequenceSubmission:
    submission: Submission
    placements: dict[int, Matrix]  # the rig armature's world matrix at each frame: where that frame's head goes


def build_sequence_submission(context, frames: range) -> SequenceSubmission:
    """Read each of `frames` from the scene into one sequence job: the rig at that frame, its
    prompt (the prompt track's there) and, with *Blender normal maps per frame*, its normal
    maps rendered at that frame (frame_NNNN_view_MMM.png). The scene returns to the frame it
    was on."""
    scene, settings = context.scene, context.scene.joker
    mesh, armature, model = rig_with_model(context)
    reference = reference_photo(settings)
    frame_specs, normal_maps, placements = [], {}, {}
    current, subframe = scene.frame_current, scene.frame_subframe
    try:
        for number in frames:
            scene.frame_set(number)
            posed, maps = _posed(context, mesh, armature, model, settings.sequence_normal_maps,
                                 prefix=f"{frame_folder_name(number)}_")
            frame_specs.append({**posed, "prompt": frame_prompt(settings, number)})
            normal_maps.update(maps)
            placements[number] = armature.matrix_world.copy()
    finally:
        scene.frame_set(current, subframe=subframe)
    spec = SequenceSpec.from_dict({"job": _shared_settings(settings), "frames": frame_specs,
                                   "frame_start": frames.start, "frame_step": frames.step})
    return SequenceSubmission(_submission(context, spec, reference, normal_maps, armature), placements)

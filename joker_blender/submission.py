"""A job as the scene describes it: rig parameters, settings and in-scene normal maps."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import numpy as np

from joker_core.cameras import Camera
from joker_core.errors import JokerError
from joker_core.files import atomic_directory
from joker_core.png import encode_png
from joker_core.protocol import JobSpec

from . import preferences
from .jobs import Submission
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
    records = [{"image": f"view_{i:03d}.png", "mask": f"mask_{i:03d}.png", "camera": camera.to_dict()}
               for i, camera in enumerate(cameras)]
    with atomic_directory(folder, overwrite=True) as staging:
        for record, normal_map in zip(records, maps):
            (staging / record["image"]).write_bytes(encode_png(normal_map.rgb))
            (staging / record["mask"]).write_bytes(encode_png(normal_map.mask.astype(np.uint8) * 255))
        description = {"source": "blender", "mode": context.scene.joker.normal_mode, "model": model.name,
                       "rig": read_params(mesh, armature, model), "views": records}
        (staging / "cameras.json").write_text(json.dumps(description, indent=1))
    return folder


def results_folder(setting: str) -> Path:
    """The preference's folder; one relative to an unsaved .blend (which has no folder yet)
    goes to Blender's user data folder instead of wherever Blender was started."""
    if setting.startswith("//") and not bpy.data.filepath:
        return Path(bpy.utils.user_resource("DATAFILES", path="joker_results", create=True))
    return Path(bpy.path.abspath(setting))


def _reference(settings) -> Path:
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


def _posed(context, mesh, armature, model, prefix: str = "") -> tuple[dict, dict[str, bytes]]:
    """The rig as it stands now: its parameters and, if the scene sends them, its normal
    maps (uploaded under `prefix`view_NNN.png)."""
    spec: dict = {"rig": read_params(mesh, armature, model)}
    normal_maps: dict[str, bytes] = {}
    if context.scene.joker.send_normal_maps:
        cameras, maps = render_views(context, mesh, model)
        names = [f"{prefix}view_{i:03d}.png" for i in range(len(cameras))]
        spec["blender_views"] = [{"camera": camera.to_dict(), "normal_map": name}
                                 for camera, name in zip(cameras, names)]
        normal_maps = {name: encode_png(normal_map.rgb) for name, normal_map in zip(names, maps)}
    return spec, normal_maps


def _submission(context, spec: JobSpec, reference: Path, normal_maps: dict[str, bytes],
                armature) -> Submission:
    prefs = preferences.get(context)
    return Submission(spec, reference, normal_maps, results_folder(prefs.results_dir), prefs.server_url,
                      prefs.token or None, rig=armature.name)


def build_submission(context) -> Submission:
    """Read the scene into a job: rig parameters, settings, in-scene normal maps."""
    settings = context.scene.joker
    mesh, armature, model = rig_with_model(context)
    reference = _reference(settings)
    posed, normal_maps = _posed(context, mesh, armature, model)
    spec = JobSpec.from_dict({**posed, **_shared_settings(settings)})
    return _submission(context, spec, reference, normal_maps, armature)

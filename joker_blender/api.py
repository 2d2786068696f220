"""A small Python API for batch scripts: the same steps as the panels, as plain calls.

    from joker_blender import api      # installed: from bl_ext.user_default.joker_blender import api
    api.configure(server_url="http://127.0.0.1:8765", results_dir="/tmp/joker")
    api.add_head()                     # the demo head; api.add_head("/models/flame2023.pkl")
    api.apply_preset("scream", keyframe=True)
    api.set_reference("/photos/me.jpg")
    head = api.generate(quality="preview")   # blocks until the head is imported
    heads = api.generate_sequence(1, 24, 2)  # one head per 2nd frame, keyed to show on its frames
    api.generate_sequence(sequence_result="animated")  # one object, a shape key per frame

Every call works on the current scene (or the `scene` given) and raises
joker_core.errors.JokerError, with the fix, when something is wrong. `generate` blocks its
thread, so call it from scripts (`blender -b`, the bpy module), not from UI callbacks; the
Generate button runs the same job without blocking.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import bpy

from joker_core.errors import JokerError

from . import generate_ops, preferences, prompt_track, reference_ops, results, rig_ops, sequence_ops, submission
from .model_cache import DEMO_SOURCE

_SETTINGS = ("prompt", "negative_prompt", "quality", "prior", "prior_weights", "seed", "views_azimuth",
             "views_elevation", "azimuth_range", "elevation_range", "view_size", "normal_mode",
             "send_normal_maps", "head_mesh", "sequence_result", "sequence_normal_maps",
             "sequence_use_scene_range", "sequence_start", "sequence_end", "sequence_step")


def _context(scene: bpy.types.Scene | None):
    return bpy.context.temp_override(scene=scene) if scene is not None else contextlib.nullcontext()


def _apply_settings(joker, settings: dict) -> None:
    unknown = sorted(set(settings) - set(_SETTINGS))
    if unknown:
        raise JokerError(f"unknown setting(s) {', '.join(unknown)}", f"use any of: {', '.join(_SETTINGS)}")
    for name, value in settings.items():
        try:
            setattr(joker, name, value)
        except (TypeError, ValueError) as error:
            raise JokerError(f"{name}={value!r} is not accepted ({error})",
                             "use a value the Joker panel offers for it") from error


def configure(*, server_url: str | None = None, token: str | None = None, results_dir: str | None = None,
              flame_model_path: str | None = None) -> None:
    """Set the add-on preferences a script needs (the ones left out stay as they are)."""
    prefs = preferences.get()
    for name, value in (("server_url", server_url), ("token", token), ("results_dir", results_dir),
                        ("flame_model_path", flame_model_path)):
        if value is not None:
            setattr(prefs, name, str(value))


def add_head(source: str | Path = DEMO_SOURCE, scene: bpy.types.Scene | None = None):
    """Add the rig of a FLAME file (or "demo") to the scene; returns (mesh, armature)."""
    with _context(scene):
        return rig_ops.add_head(bpy.context, str(source))


def apply_preset(name: str, keyframe: bool = False, scene: bpy.types.Scene | None = None) -> None:
    """Pose the scene's rig with an expression preset (keyed at the current frame if asked)."""
    with _context(scene):
        rig_ops.apply_preset(bpy.context, name, keyframe)


def set_reference(path: str | Path, scene: bpy.types.Scene | None = None) -> bpy.types.Image:
    """Load the reference photo and make it the scene's."""
    with _context(scene):
        return reference_ops.load_reference(bpy.context, str(path))


def generate(scene: bpy.types.Scene | None = None, **settings) -> bpy.types.Object:
    """Run a job for the scene's rig and reference and return the imported head. Keyword
    arguments set the scene's Joker settings first (prompt, quality, prior, seed, view_size,
    views_azimuth, views_elevation, normal_mode, send_normal_maps, ...)."""
    with _context(scene):
        _apply_settings(bpy.context.scene.joker, settings)
        return generate_ops.run_job(bpy.context)


def generate_sequence(frame_start: int | None = None, frame_end: int | None = None, frame_step: int | None = None,
                      scene: bpy.types.Scene | None = None, **settings) -> bpy.types.Collection:
    """Generate one head per frame as one sequence job and return the sequence's collection
    (heads keyed to show on their frames; with sequence_result="animated", one animated
    head with a shape key per frame). Frames: the scene's frame range and step, or
    frame_start..frame_end (included) every frame_step frames when any of them is given
    (the others then come from the scene's range). Keyword arguments as generate's."""
    with _context(scene):
        scene = bpy.context.scene
        if (frame_start, frame_end, frame_step) != (None, None, None):
            settings = {**settings, "sequence_use_scene_range": False,
                        "sequence_start": scene.frame_start if frame_start is None else frame_start,
                        "sequence_end": scene.frame_end if frame_end is None else frame_end,
                        "sequence_step": scene.frame_step if frame_step is None else frame_step}
        _apply_settings(scene.joker, settings)
        return sequence_ops.run_sequence(bpy.context)


def key_prompt(prompt: str, frame: int | None = None, scene: bpy.types.Scene | None = None) -> int:
    """From `frame` (default: the current frame) until the next key, a sequence's frames use
    `prompt` ("" : the Prompt panel's): added to the sequence's prompt list if new, and the
    prompt track keyed to it. Returns the track's value."""
    with _context(scene):
        scene = bpy.context.scene
        prompts = [item.text for item in scene.joker.sequence_prompts]
        if prompt and prompt not in prompts:
            scene.joker.sequence_prompts.add().text = prompt
            prompts.append(prompt)
        current = scene.frame_current
        scene.frame_set(current if frame is None else frame)
        try:
            track = prompts.index(prompt) + 1 if prompt else 0
            prompt_track.key_prompt(scene, track)
        finally:
            scene.frame_set(current)
        return track


def regenerate_frame(frame: int | None = None, scene: bpy.types.Scene | None = None,
                     **settings) -> bpy.types.Object:
    """Generate again the frame of the scene's sequence whose head shows at `frame`
    (default: the current frame) from the rig as keyed there; only that head is replaced.
    Returns the new head."""
    with _context(scene):
        scene = bpy.context.scene
        _apply_settings(scene.joker, settings)
        current = scene.frame_current
        if frame is not None:
            scene.frame_set(frame)
        try:
            return sequence_ops.run_regenerate(bpy.context)
        finally:
            scene.frame_set(current)


def import_result(glb_path: str | Path, name: str = "Joker Head Result",
                  scene: bpy.types.Scene | None = None) -> bpy.types.Object:
    """Import a result GLB (e.g. from an earlier job's folder) onto the scene's rig."""
    with _context(scene):
        rig = rig_ops.find_rig(bpy.context)
        return results.import_result(bpy.context.scene, Path(glb_path), name,
                                     rig[1].matrix_world if rig else None)


def write_normal_maps(folder: str | Path, scene: bpy.types.Scene | None = None, **settings) -> Path:
    """Render the in-scene normal maps a job would send into `folder` (view_000.png,
    mask_000.png, ..., cameras.json: the layout of `joker render-normals`); returns it."""
    with _context(scene):
        _apply_settings(bpy.context.scene.joker, settings)
        return submission.write_views(bpy.context, Path(folder))

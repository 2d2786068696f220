"""The engine's entry point: one photo and a pose in, a textured head mesh out.

    from joker.api import generate
    from joker_core.protocol import JobSpec
    result = generate("me.jpg", spec=JobSpec(preset="scream", quality="preview"), out_dir="out/")
    print(result.glb)

The CLI (`joker generate`, `joker demo`), the server's worker and scripts all call this.
The output folder describes itself (inputs, spec, versions, log, metrics); a failed job
leaves `<out_dir>.failed` with its inputs and log instead of a half-made result.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from joker_core.errors import JobCancelled
from joker_core.files import atomic_write_bytes
from joker_core.png import encode_png
from joker_core.protocol import JobSpec, ProgressEvent

from .distill.schedule import Preset
from .generation.output import LOG_NAME, job_folder, versions, write_json
from .mesh.pipeline import MeshSettings

log = logging.getLogger("joker.api")

# Share of the whole job each phase takes, for one progress bar from 0 to 1.
_PREPARE, _DISTILL = 0.05, 0.85


@dataclass(frozen=True)
class Tuning:
    """Settings that replace the quality preset's: small sizes for tests and benchmarks."""

    preset: Preset | None = None
    mesh: MeshSettings | None = None


@dataclass(frozen=True)
class GenerationResult:
    folder: Path
    glb: Path
    obj: Path
    texture: Path
    turntable: Path
    metrics: Path
    log: Path
    previews: tuple[Path, ...]
    figures: dict


def generate(reference, *, spec: JobSpec, out_dir, progress: Callable[[ProgressEvent], None] | None = None,
             should_cancel: Callable[[], bool] | None = None, inputs_dir: Path | None = None,
             overwrite: bool = False,
             tuning: Tuning | None = None) -> GenerationResult:
    """Run one job. `reference` is an image path or H x W x 3 uint8 array; Blender normal
    maps named in `spec.blender_views` are read from `inputs_dir` (default: the photo's
    folder). Raises JokerError for bad input, JobCancelled when `should_cancel()` turns true.
    `tuning` replaces the quality preset's settings (tests, benchmarks), never user input."""
    from .prior.projection.photo import load_photo

    report = progress or (lambda event: None)
    cancelled = should_cancel or (lambda: False)
    destination = Path(out_dir)
    if inputs_dir is None and isinstance(reference, (str, Path)):
        inputs_dir = Path(reference).parent
    started = time.monotonic()
    with job_folder(destination, overwrite) as staging:
        report(ProgressEvent("prepare", 0.0, message="reading the photo and posing the rig"))
        photo = load_photo(reference)
        _write_inputs(staging, photo, spec)
        figures = _run(photo, spec, staging, inputs_dir or Path.cwd(), report, cancelled, tuning or Tuning())
        figures["wall_seconds"] = time.monotonic() - started
        write_json(staging / "metrics.json", figures)
        log.info("done in %.1f s", figures["wall_seconds"])
    report(ProgressEvent("done", 1.0, prior_evaluations=figures["prior_evaluations"],
                         nerf_steps=figures["nerf_steps"], message="finished"))
    return GenerationResult(destination, destination / "head.glb", destination / "head.obj",
                            destination / "head.png", destination / "turntable.png",
                            destination / "metrics.json", destination / LOG_NAME,
                            tuple(sorted((destination / "previews").glob("*.png"))), figures)


def _write_inputs(folder: Path, photo: np.ndarray, spec: JobSpec) -> None:
    inputs = folder / "inputs"
    atomic_write_bytes(inputs / "reference.png", encode_png(photo))
    write_json(inputs / "spec.json", spec.to_dict())
    write_json(folder / "versions.json", {**versions(), "model": spec.model or "demo head"})


def _run(photo, spec, staging, inputs_dir, report, cancelled, tuning) -> dict:
    from .distill.distiller import distill
    from .generation import metrics
    from .generation.job import prepare
    from .generation.mesh_metrics import mesh_fidelity
    from .generation.turntable import turntable_strip
    from .mesh.fields import BoundingBox
    from .mesh.pipeline import MeshStats, build_textured_mesh
    from .mesh.export import write_glb, write_obj

    job = prepare(photo, spec, inputs_dir, preset_override=tuning.preset)
    if cancelled():
        raise JobCancelled()
    previews = staging / "previews"
    seen_previews: set[Path] = set()

    def on_distill(state) -> None:
        fresh = sorted(set(previews.glob("*.png")) - seen_previews) if previews.exists() else []
        seen_previews.update(fresh)
        stage = "stage 1: one-step targets" if state.stage == 1 else "stage 2: multi-step targets"
        report(ProgressEvent(stage, _PREPARE + _DISTILL * state.progress,
                             eta_s=None if state.eta_seconds is None else state.eta_seconds / _DISTILL,
                             prior_evaluations=state.prior_evaluations, nerf_steps=state.nerf_steps,
                             preview=str(fresh[-1]) if fresh else None))

    report(ProgressEvent("distill", _PREPARE, message=f"{len(job.views)} views, quality {spec.quality}"))
    result = distill(job.prior, job.views, job.condition, job.preset, seed=spec.seed, device=job.device,
                     box=job.box, preview_dir=previews, on_progress=on_distill, cancel=cancelled, rig=job.rig)
    report(ProgressEvent("mesh", _PREPARE + _DISTILL, prior_evaluations=result.prior_evaluations,
                         nerf_steps=result.nerf_steps, message="extracting, unwrapping and baking the mesh"))
    stats = MeshStats()
    box = BoundingBox(tuple(job.box.minimum), tuple(job.box.maximum))
    mesh_settings = tuning.mesh or MeshSettings(iso_level=job.preset.surface_density)
    mesh_settings = dataclasses.replace(mesh_settings, device=str(job.device))
    mesh = build_textured_mesh(result.field.density, result.field.color, box, mesh_settings, stats)
    if cancelled():
        raise JobCancelled()
    write_glb(mesh, staging / "head.glb")
    write_obj(mesh, staging, "head")
    Image.fromarray(turntable_strip(mesh, job.view_rig)).save(staging / "turntable.png")
    figures = {
        "prior_evaluations": result.prior_evaluations, "nerf_steps": result.nerf_steps,
        "distill_seconds": result.seconds, "final_loss": result.final_loss,
        "views": len(job.views), "view_size": job.preset.views.size, "quality": spec.quality,
        "held_out_psnr_db": metrics.held_out_psnr(job, result, spec.seed),
        "back_psnr_db": metrics.back_psnr(job, result),
        **mesh_fidelity(job, result, mesh, spec.seed),
        **metrics.face_chamfer(mesh.vertices, job.model, job.posed_vertices, job.views.cameras),
        "mouth_opening_rig_m": metrics.mouth_opening(job.posed_vertices, job.model.faces, job.model, job.posed_vertices),
        "mouth_opening_mesh_m": metrics.mouth_opening(mesh.vertices, mesh.faces, job.model, job.posed_vertices),
        "mesh": stats.as_dict(),
    }
    return figures

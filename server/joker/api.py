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

from joker_core.errors import JobCancelled
from joker_core.protocol import JobSpec, ProgressEvent

from .generation.output import LOG_NAME, job_folder, write_inputs, write_json
from .generation.runner import Tuning, make_head

__all__ = ["GenerationResult", "Tuning", "generate"]

log = logging.getLogger("joker.api")

_PREPARE = 0.05  # of the whole job's progress; the head takes the rest


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
    from .distill.distiller import Distillation, distill
    from .fit.jobs import write_fit
    from .generation.job import prepare
    from .prior.projection.photo import load_photo

    tuning = tuning or Tuning()
    report = progress or (lambda event: None)
    cancelled = should_cancel or (lambda: False)
    destination = Path(out_dir)
    if inputs_dir is None and isinstance(reference, (str, Path)):
        inputs_dir = Path(reference).parent
    started = time.monotonic()
    with job_folder(destination, overwrite) as staging:
        report(ProgressEvent("prepare", 0.0, message="reading the photo and posing the rig"))
        photo = load_photo(reference)
        write_inputs(staging, photo, spec)
        job = prepare(photo, spec, inputs_dir or Path.cwd(), preset_override=tuning.preset)
        write_fit(staging, job.fit)
        if cancelled():
            raise JobCancelled()

        def distil(previews: Path, on_progress) -> Distillation:
            return distill(job.prior, job.views, job.condition, job.preset, seed=spec.seed, device=job.device,
                           box=job.box, preview_dir=previews, on_progress=on_progress, cancel=cancelled,
                           rig=job.rig, lpips_weights=spec.lpips_weights)

        head = make_head(job, distil, staging, tuning=tuning, report=lambda event: report(_in_job(event)),
                         cancelled=cancelled)
        figures = {**head.figures, "wall_seconds": time.monotonic() - started}
        write_json(staging / "metrics.json", figures)
        log.info("done in %.1f s", figures["wall_seconds"])
    report(ProgressEvent("done", 1.0, prior_evaluations=figures["prior_evaluations"],
                         nerf_steps=figures["nerf_steps"], message="finished"))
    return GenerationResult(destination, destination / "head.glb", destination / "head.obj",
                            destination / "head.png", destination / "turntable.png",
                            destination / "metrics.json", destination / LOG_NAME,
                            tuple(sorted((destination / "previews").glob("*.png"))), figures)


def _in_job(event: ProgressEvent) -> ProgressEvent:
    """A head's progress (0..1) as the job's: preparing took the first share."""
    eta = None if event.eta_s is None else event.eta_s / (1.0 - _PREPARE)
    return dataclasses.replace(event, progress=_PREPARE + (1.0 - _PREPARE) * event.progress, eta_s=eta)

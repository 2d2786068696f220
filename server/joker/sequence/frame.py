"""One frame of a sequence: distil (warm or cold), mesh, and write its folder."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from joker_core.errors import JobCancelled

from ..distill.distiller import Distillation, Progress, distill
from ..distill.field import SURFACE_DENSITY
from ..generation import metrics
from ..generation.job import PreparedJob
from ..generation.output import write_json
from ..mesh.export import write_glb, write_obj
from ..mesh.fields import BoundingBox
from ..mesh.pipeline import MeshSettings, MeshStats, build_textured_mesh
from .budget import FrameBudget


@dataclass(frozen=True)
class FrameRun:
    """What one frame did and cost (the manifest's entry, less its file names)."""

    budget: FrameBudget
    distillation: Distillation
    figures: dict


def run_frame(job: PreparedJob, budget: FrameBudget, previous: Distillation | None, folder: Path,
              seed: int, mesh_settings: MeshSettings | None, on_progress: Callable[[Progress], None],
              cancel: Callable[[], bool]) -> FrameRun:
    """Distil the frame into `folder` (a staging folder): head.glb/.obj/.png, metrics.json."""
    result = distill(job.prior, job.views, job.condition, budget.preset, seed=seed, device=job.device,
                     box=job.box, preview_dir=folder / "previews", on_progress=on_progress, cancel=cancel,
                     initial_field=previous.field if previous is not None else None,
                     initial_targets=previous.targets if previous is not None and budget.reuse_targets else None)
    settings = dataclasses.replace(mesh_settings or MeshSettings(iso_level=SURFACE_DENSITY), device=str(job.device))
    stats = MeshStats()
    box = BoundingBox(tuple(job.box.minimum), tuple(job.box.maximum))
    mesh = build_textured_mesh(result.field.density, result.field.color, box, settings, stats)
    if cancel():
        raise JobCancelled()
    write_glb(mesh, folder / "head.glb")
    write_obj(mesh, folder, "head")
    figures = {
        "warm": budget.warm, "budget_share": budget.share, "rig_motion_m": budget.motion_m,
        "reused_targets": budget.reuse_targets, "prior_evaluations": result.prior_evaluations,
        "nerf_steps": result.nerf_steps, "distill_seconds": result.seconds, "final_loss": result.final_loss,
        "held_out_psnr_db": metrics.held_out_psnr(job, result, seed), "mesh": stats.as_dict(),
    }
    write_json(folder / "metrics.json", figures)
    return FrameRun(budget, result, figures)

"""One distilled frame's files: the textured head (GLB, OBJ + texture) and its metrics."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable

from joker_core.errors import JobCancelled

from ..generation import metrics
from ..generation.output import write_json
from ..mesh.export import write_glb, write_obj
from ..mesh.fields import BoundingBox
from ..mesh.pipeline import MeshSettings, MeshStats, build_textured_mesh
from .frames import DistilledFrame


def write_frame(frame: DistilledFrame, folder: Path, mesh_settings: MeshSettings | None, seed: int,
                cancel: Callable[[], bool]) -> dict:
    """Mesh and bake the frame's field into `folder`: head.glb/.obj/.png, metrics.json."""
    job, budget, result = frame.job, frame.budget, frame.distillation
    settings = mesh_settings or MeshSettings(iso_level=job.preset.surface_density)
    settings = dataclasses.replace(settings, device=str(job.device))
    stats = MeshStats()
    box = BoundingBox(tuple(job.box.minimum), tuple(job.box.maximum))
    mesh = build_textured_mesh(result.field.density, result.field.color, box, settings, stats)
    if cancel():
        raise JobCancelled()
    write_glb(mesh, folder / "head.glb")
    write_obj(mesh, folder, "head")
    figures = {
        "warm": budget.warm, "held": budget.held, "budget_share": budget.share, "rig_motion_m": budget.motion_m,
        "reused_targets": budget.reuse_targets, "prior_evaluations": result.prior_evaluations,
        "nerf_steps": result.nerf_steps, "distill_seconds": result.seconds, "final_loss": result.final_loss,
        "held_out_psnr_db": metrics.held_out_psnr(job, result, seed), "mesh": stats.as_dict(),
    }
    write_json(folder / "metrics.json", figures)
    return figures

"""One head from a prepared job: distil -> mesh -> files -> figures.

`joker.api.generate` runs it once; a sequence runs it once per frame with its own
distillation (warm-started from the frame before). Whatever a head folder holds, it is
written here and nowhere else: head.glb, head.obj/.mtl/.png (marching cubes), head_rig.glb, head_rig.obj/.mtl/.png (the
rig's topology fitted to the same surface), turntable.png, previews/.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from joker_core.errors import JobCancelled
from joker_core.files import atomic_write_bytes
from joker_core.png import encode_png
from joker_core.protocol import ProgressEvent

from ..box import Box
from ..distill.distiller import Distillation, Progress
from ..distill.schedule import Preset
from ..mesh.export import TexturedMesh, write_mesh_files
from ..mesh.pipeline import MeshSettings, MeshStats, build_textured_mesh
from ..mesh.register import RegisterSettings, Registration, register_head, surface_vertices
from ..mesh.rig_uv import textured_rig_mesh
from . import metrics
from .job import PreparedJob
from .mesh_metrics import mesh_fidelity
from .turntable import turntable_strip

log = logging.getLogger("joker.generation")

DISTILL_SHARE = 0.9  # of a head's progress; meshing and writing take the rest

# (folder for previews, progress callback) -> the distilled field. A single job distils
# from scratch; a sequence frame from the frame before.
Distil = Callable[[Path, Callable[[Progress], None]], Distillation]


@dataclass(frozen=True)
class Tuning:
    """Settings that replace the quality preset's: small sizes for tests and benchmarks.
    `benchmark_metrics` adds the figures only benchmarks need (they cost renders).
    `rig_topology` also fits the rig's own topology to the surface (head_rig.glb; a
    sequence also gets sequence.glb): the default for sequences, opt-in for single heads
    (at preview it renders closer to the targets than marching cubes: docs/rig_topology.md); a
    spec's `rig_topology` opts in too, and then that mesh is measured as the marching-cubes one is.
    `volume` replaces a sequence's box (sequence/frames.py): a split sequence's segments
    share the whole sequence's, so their frames are the unsplit run's."""

    preset: Preset | None = None
    mesh: MeshSettings | None = None
    benchmark_metrics: bool = False
    rig_topology: bool = False
    volume: Box | None = None


@dataclass(frozen=True)
class Head:
    """What make_head wrote into its folder, and what it measured."""

    distillation: Distillation
    mesh: TexturedMesh
    rig_mesh: TexturedMesh | None       # the rig's topology on the same surface, in the rig's UV layout
    registration: Registration | None
    figures: dict


def make_head(job: PreparedJob, distil: Distil, folder: Path, *, tuning: Tuning,
              report: Callable[[ProgressEvent], None], cancelled: Callable[[], bool]) -> Head:
    """Distil, mesh and write one head into `folder`. Progress events run from 0 to 1 over
    this head; callers rescale them into their own job."""
    previews = folder / "previews"
    seen: set[Path] = set()

    def on_distill(state: Progress) -> None:
        fresh = sorted(set(previews.glob("*.png")) - seen) if previews.exists() else []
        seen.update(fresh)
        stage = "stage 1: one-step targets" if state.stage == 1 else "stage 2: multi-step targets"
        report(ProgressEvent(stage, DISTILL_SHARE * state.progress,
                             eta_s=None if state.eta_seconds is None else state.eta_seconds / DISTILL_SHARE,
                             prior_evaluations=state.prior_evaluations, nerf_steps=state.nerf_steps,
                             preview=str(fresh[-1]) if fresh else None))

    report(ProgressEvent("distill", 0.0, message=f"{len(job.views)} views, quality {job.spec.quality}"))
    result = distil(previews, on_distill)
    if cancelled():
        raise JobCancelled()
    report(ProgressEvent("mesh", DISTILL_SHARE, prior_evaluations=result.prior_evaluations,
                         nerf_steps=result.nerf_steps, message="extracting, unwrapping and baking the mesh"))
    stats = MeshStats()
    settings = tuning.mesh or MeshSettings(iso_level=job.preset.surface_density)
    settings = dataclasses.replace(settings, device=str(job.device))
    rig = settings.rig_surface(job.posed_vertices, job.model.faces, job.box)
    mesh = build_textured_mesh(result.field.density, result.field.color, job.box, settings, stats,
                               views=(job.views.cameras, result.targets), rig=rig)
    if cancelled():
        raise JobCancelled()
    write_mesh_files(mesh, folder, "head", stats, unlit=job.spec.unlit)
    registration = rig_mesh = None
    if tuning.rig_topology or job.spec.rig_topology:
        with stats.timed("register"):
            registration = register_head(job.posed_vertices, job.model.faces, surface_vertices(job.model),
                                         mesh.vertices, mesh.faces, result.field.density, settings.iso_level,
                                         RegisterSettings(tolerance=rig.tolerance), device=settings.device)
            rig_mesh = textured_rig_mesh(job.model, registration.vertices, result.field.color, settings,
                                         views=(job.views.cameras, result.targets))
            write_mesh_files(rig_mesh, folder, "head_rig", unlit=job.spec.unlit)
    atomic_write_bytes(folder / "turntable.png", encode_png(turntable_strip(mesh, job.view_rig)))
    figures = _figures(job, result, mesh, stats, tuning.benchmark_metrics)
    if registration is not None:
        lips = metrics.lip_line(job.model, job.posed_vertices)
        figures["registration"] = {**registration.figures, "mouth_opening_m": metrics.mouth_opening(
            registration.vertices, job.model.faces, lips)}
        if job.spec.rig_topology:  # asked for, to choose between the two: measured as the marching-cubes mesh is
            figures["registration"].update(mesh_fidelity(job, result, rig_mesh, job.spec.seed))
    return Head(result, mesh, rig_mesh, registration, figures)


def _figures(job: PreparedJob, result: Distillation, mesh: TexturedMesh, stats: MeshStats,
             benchmark: bool) -> dict:
    lips = metrics.lip_line(job.model, job.posed_vertices)
    figures = {
        "prior_evaluations": result.prior_evaluations, "nerf_steps": result.nerf_steps,
        "distill_seconds": result.seconds, "final_loss": result.final_loss,
        "lpips": result.lpips,  # "used", "off" (the preset does not weight it) or "missing" (no weights given)
        "views": len(job.views), "view_size": job.preset.views.size, "quality": job.spec.quality,
        "held_out_psnr_db": metrics.held_out_psnr(job, result, job.spec.seed),
        **metrics.face_chamfer(mesh.vertices, job.model, job.posed_vertices, job.views.cameras),
        "mouth_opening_rig_m": metrics.mouth_opening(job.posed_vertices, job.model.faces, lips),
        "mouth_opening_mesh_m": metrics.mouth_opening(mesh.vertices, mesh.faces, lips),
        "identity_distance": metrics.identity_distance(job, mesh),
        "mesh": stats.as_dict(),
    }
    figures.update(mesh_fidelity(job, result, mesh, job.spec.seed, with_field=benchmark))
    if benchmark:
        figures["back_psnr_db"] = metrics.back_psnr(job, result)
    return figures

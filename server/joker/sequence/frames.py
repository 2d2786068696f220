"""The distillation side of a sequence: frame after frame, each warm-started from the one
before (or, for comparison, each from scratch). No files: engine.py has the job runner
(generation/runner.py) mesh and write each frame.

All frames share one prior, one head volume and one view rig, so a field carries over.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from joker_core.errors import JobCancelled
from joker_core.framing import bounding_sphere
from joker_core.head_model import HeadModel, load_model
from joker_core.lbs import numpy_rig, pose
from joker_core.protocol import SequenceSpec

from ..distill.distiller import Distillation, Progress, distill
from ..box import Box
from ..distill.schedule import Preset
from ..distill.warm_start import WarmStart, anchor_to_previous, carry_along_rig, same_cameras
from ..fit.jobs import job_fit
from ..fit.solve import ReferenceFit
from ..generation.job import PreparedJob, prepare, rig_params
from .budget import FrameBudget, cold_budget, frame_budget, rig_motion

log = logging.getLogger("joker.sequence")


def posed_frames(spec: SequenceSpec, model: HeadModel, fit: ReferenceFit | None) -> list[np.ndarray]:
    """Each frame's posed rig, wearing the reference fit's identity."""
    rig = numpy_rig(model)
    return [pose(rig, rig_params(spec.frame_job(i), model, fit)).vertices for i in range(len(spec.frames))]


def sequence_volume(model: HeadModel, posed: list[np.ndarray]) -> Box:
    """The box every frame is distilled in: around the template and every posed frame."""
    centre, radius = bounding_sphere(np.concatenate([model.v_template, *posed]))
    return Box.around(centre, radius)


@dataclass(frozen=True)
class DistilledFrame:
    index: int
    job: PreparedJob
    budget: FrameBudget
    distillation: Distillation


class FrameDistiller:
    """Distils the frames of `spec` in order; `warm=False` runs each from scratch."""

    def __init__(self, photo: np.ndarray, spec: SequenceSpec, inputs_dir: Path,
                 preset: Preset | None = None, warm: bool = True, volume: Box | None = None):
        self.photo, self.spec, self.inputs_dir = photo, spec, inputs_dir
        self.preset, self.warm = preset, warm
        model = load_model(spec.job.model)
        self.fit = job_fit(spec.job, photo, model)  # one fit, every frame wears its identity
        self.posed = posed_frames(spec, model, self.fit)
        # One volume for every frame, so frame k's field is valid in frame k+1's box; a
        # segment of a split sequence gets the whole sequence's (segments.py).
        self.box = volume or sequence_volume(model, self.posed)
        self.prior = None
        self.previous: DistilledFrame | None = None

    def distil(self, index: int, preview_dir: Path | None = None,
               on_progress: Callable[[Progress], None] | None = None,
               cancel: Callable[[], bool] | None = None) -> DistilledFrame:
        """Frame `index`, after frame `index - 1` (warm starts need their predecessor)."""
        if cancel is not None and cancel():
            raise JobCancelled()
        return self.frame(index).distil(preview_dir, on_progress, cancel)

    def frame(self, index: int) -> "PendingFrame":
        """Frame `index` prepared (its rig, views and budget), not yet distilled."""
        job = prepare(self.photo, self.spec.frame_job(index), self.inputs_dir, self.preset, prior=self.prior,
                      fit=self.fit)
        job = dataclasses.replace(job, box=self.box)
        self.prior = job.prior
        budget = self._budget(index, job)
        log.info("frame %d: motion %.4f m, %s budget %.2f%s", self.spec.frame_number(index), budget.motion_m,
                 "warm" if budget.warm else "cold", budget.share, ", reusing targets" if budget.reuse_targets else "")
        return PendingFrame(self, index, job, budget)

    def _distil(self, frame: "PendingFrame", preview_dir: Path | None,
                on_progress: Callable[[Progress], None] | None,
                cancel: Callable[[], bool] | None) -> DistilledFrame:
        job, budget = frame.job, frame.budget
        if budget.held:  # the same head as the frame before, at no cost
            result = dataclasses.replace(self.previous.distillation, prior_evaluations=0, nerf_steps=0,
                                         seconds=0.0, refreshes=[], previews=[])
        else:
            result = distill(job.prior, job.views, job.condition, budget.preset, seed=self.spec.job.seed,
                             device=job.device, box=job.box, preview_dir=preview_dir, on_progress=on_progress,
                             cancel=cancel, rig=job.rig, warm_start=self._warm_start(frame.index, job, budget, cancel),
                             lpips_weights=job.spec.lpips_weights)
        self.previous = DistilledFrame(frame.index, job, budget, result)
        return self.previous

    def _warm_start(self, index: int, job: PreparedJob, budget: FrameBudget,
                    cancel: Callable[[], bool] | None = None) -> WarmStart | None:
        if self.previous is None or not self.warm:
            return None
        previous = self.previous.distillation
        # Unchanged pixels keep the previous frame's look: warm frames must not flicker.
        anchor = anchor_to_previous(previous.field, previous.occupancy, self.previous.job.views, job.views,
                                    budget.preset.samples_per_ray)
        field = previous.field
        if budget.warm:  # the previous head moved along with the rig: the warm run only refines
            generator = torch.Generator().manual_seed(self.spec.job.seed + index)
            field = carry_along_rig(field, self.posed[self.previous.index], self.posed[index],
                                    (budget.preset.lr_grid, budget.preset.lr_network), generator, cancel)
        return WarmStart(field, previous.targets if budget.reuse_targets else None, anchor)

    def _budget(self, index: int, job: PreparedJob) -> FrameBudget:
        if self.previous is None or not self.warm:
            return cold_budget(job.preset)
        same_prompt = _prompts(self.spec.frame_job(index)) == _prompts(self.spec.frame_job(index - 1))
        budget = frame_budget(job.preset, job.prior.levels, rig_motion(self.posed[index - 1], self.posed[index]),
                              same_prompt)
        if budget.reuse_targets and not same_cameras(self.previous.job.views, job.views):
            budget = dataclasses.replace(budget, reuse_targets=False)  # a pixel of one is not of the other
        return budget


@dataclass(frozen=True)
class PendingFrame:
    """A prepared frame; distilling it makes it the predecessor of the next."""

    distiller: FrameDistiller
    index: int
    job: PreparedJob
    budget: FrameBudget

    def distil(self, preview_dir: Path | None = None, on_progress: Callable[[Progress], None] | None = None,
               cancel: Callable[[], bool] | None = None) -> DistilledFrame:
        return self.distiller._distil(self, preview_dir, on_progress, cancel)


def _prompts(job) -> tuple[str, str]:
    return job.prompt, job.negative_prompt

"""generate_sequence: a photo and a keyframed expression in, one textured head per frame out.

    from joker.sequence import generate_sequence
    from joker_core.protocol import SequenceSpec
    result = generate_sequence("me.jpg", spec=SequenceSpec.from_dict({...}), out_dir="seq/")
    for frame in result.frames: print(frame.number, frame.glb)

Frame k starts from frame k-1's radiance field (a copy of its weights), and from its prior
targets where the rig barely moved; its budget follows the rig's motion (budget.py). All
frames share one prior, one head volume and one view rig, so a field carries over.

The output folder: inputs/ (reference, spec), versions.json, frames/frame_NNNN/ (each
written whole, as generate() writes a job folder) and sequence.json, the manifest,
rewritten after every frame. A cancel or a failure keeps the finished frames.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from joker_core.errors import JobCancelled, JokerError
from joker_core.files import atomic_write_bytes
from joker_core.framing import bounding_sphere
from joker_core.lbs import numpy_rig, pose
from joker_core.png import encode_png
from joker_core.protocol import ProgressEvent, SequenceSpec

from ..distill.distiller import Distillation, Progress
from ..distill.field import Box
from ..generation.output import job_folder, versions, write_json
from .budget import FrameBudget, cold_budget, frame_budget, rig_motion
from .manifest import MANIFEST_NAME, Manifest, frame_folder_name

log = logging.getLogger("joker.sequence")
_DISTILL_SHARE = 0.9  # of a frame's progress; the mesh takes the rest


@dataclass(frozen=True)
class FrameResult:
    index: int
    number: int          # the frame number in the scene (frame_start + index * frame_step)
    folder: Path
    glb: Path
    figures: dict


@dataclass(frozen=True)
class SequenceResult:
    folder: Path
    manifest: Path
    frames: tuple[FrameResult, ...]


def generate_sequence(reference, *, spec: SequenceSpec, out_dir,
                      progress: Callable[[ProgressEvent], None] | None = None,
                      should_cancel: Callable[[], bool] | None = None, model_path: str | None = None,
                      inputs_dir: Path | None = None, overwrite: bool = False, tuning=None) -> SequenceResult:
    """Run a sequence job; arguments as joker.api.generate's. Raises JokerError for bad
    input and JobCancelled on cancel, in both cases after the finished frames are written."""
    from ..api import Tuning
    from ..prior.projection.photo import load_photo

    report = progress or (lambda event: None)
    cancelled = should_cancel or (lambda: False)
    folder = _fresh_folder(Path(out_dir), overwrite)
    if inputs_dir is None and isinstance(reference, (str, Path)):
        inputs_dir = Path(reference).parent
    photo = load_photo(reference)
    atomic_write_bytes(folder / "inputs" / "reference.png", encode_png(photo))
    write_json(folder / "inputs" / "spec.json", spec.to_dict())
    write_json(folder / "versions.json", {**versions(), "model": model_path or "demo head"})
    manifest = Manifest(folder / MANIFEST_NAME, spec)
    manifest.write()
    frames = _Frames(photo, spec, inputs_dir or Path.cwd(), model_path, tuning or Tuning(), folder, report,
                     cancelled)
    try:
        for index in range(len(spec.frames)):
            frames.run(index, manifest)
    except JobCancelled:
        manifest.end("cancelled")
        raise
    except BaseException as error:
        manifest.end("failed", str(error) or type(error).__name__)
        raise
    manifest.end("finished")
    report(ProgressEvent("done", 1.0, prior_evaluations=frames.prior_evaluations, nerf_steps=frames.nerf_steps,
                         message=f"{len(spec.frames)} frames finished"))
    return SequenceResult(folder, manifest.path, tuple(frames.results))


def _fresh_folder(folder: Path, overwrite: bool) -> Path:
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise JokerError(f"output folder {folder} exists and is not empty",
                             "choose a new folder, or pass --overwrite")
        shutil.rmtree(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JokerError(f"cannot create {folder} ({exc.strerror})",
                         "choose an output folder on a writable disk with free space") from exc
    return folder


class _Frames:
    """The frames of one sequence, run in order; each knows the one before."""

    def __init__(self, photo: np.ndarray, spec: SequenceSpec, inputs_dir: Path, model_path: str | None,
                 tuning, folder: Path, report: Callable[[ProgressEvent], None], cancelled: Callable[[], bool]):
        from ..generation.job import load_model, rig_params

        self.photo, self.spec, self.inputs_dir, self.model_path = photo, spec, inputs_dir, model_path
        self.tuning, self.folder, self.report, self.cancelled = tuning, folder, report, cancelled
        model = load_model(model_path)
        rig = numpy_rig(model)
        self.posed = [pose(rig, rig_params(spec.frame_job(i), model)).vertices for i in range(len(spec.frames))]
        # One volume for every frame, so frame k's field is valid in frame k+1's box.
        centre, radius = bounding_sphere(np.concatenate([model.v_template, *self.posed]))
        self.box = Box(center=tuple(float(c) for c in centre), half_size=float(radius) * 1.05)
        self.prior = None
        self.previous: Distillation | None = None
        self.results: list[FrameResult] = []
        self.prior_evaluations = self.nerf_steps = 0

    def run(self, index: int, manifest: Manifest) -> None:
        from ..generation.job import prepare
        from .frame import run_frame

        if self.cancelled():
            raise JobCancelled()
        number = self.spec.frame_number(index)
        job = prepare(self.photo, self.spec.frame_job(index), self.inputs_dir, self.model_path,
                      self.tuning.preset, prior=self.prior)
        job = dataclasses.replace(job, box=self.box)
        self.prior = job.prior
        budget = self._budget(index, job)
        log.info("frame %d: motion %.4f m, %s budget %.2f%s", number, budget.motion_m,
                 "warm" if budget.warm else "cold", budget.share, ", reusing targets" if budget.reuse_targets else "")
        with job_folder(self.folder / "frames" / frame_folder_name(number)) as staging:
            run = run_frame(job, budget, self.previous, staging, self.spec.job.seed, self.tuning.mesh,
                            self._distill_progress(index, number), self.cancelled)
        self.previous = run.distillation
        self.prior_evaluations += run.figures["prior_evaluations"]
        self.nerf_steps += run.figures["nerf_steps"]
        manifest.add_frame(index, run.figures)
        frame_dir = self.folder / manifest.frames[-1]["folder"]
        self.results.append(FrameResult(index, number, frame_dir, frame_dir / "head.glb", run.figures))
        self.report(ProgressEvent(f"frame {number} finished", (index + 1) / len(self.spec.frames),
                                  prior_evaluations=self.prior_evaluations, nerf_steps=self.nerf_steps,
                                  message=f"{manifest.frames[-1]['glb']} ({index + 1}/{len(self.spec.frames)})"))

    def _budget(self, index: int, job) -> FrameBudget:
        if self.previous is None:
            return cold_budget(job.preset)
        budget = frame_budget(job.preset, job.prior.levels, rig_motion(self.posed[index - 1], self.posed[index]))
        if budget.reuse_targets and not self._same_cameras(index):
            budget = dataclasses.replace(budget, reuse_targets=False)
        return budget

    def _same_cameras(self, index: int) -> bool:
        """Targets carry over only between identical views (the engine's own grid always is)."""
        def cameras(i: int) -> list[dict]:
            return [view.camera for view in self.spec.frames[i].blender_views]
        return cameras(index) == cameras(index - 1)

    def _distill_progress(self, index: int, number: int) -> Callable[[Progress], None]:
        count = len(self.spec.frames)

        def on_progress(state: Progress) -> None:
            stage = "stage 1" if state.stage == 1 else "stage 2"
            self.report(ProgressEvent(f"frame {number}: {stage}",
                                      min(1.0, (index + _DISTILL_SHARE * state.progress) / count),
                                      prior_evaluations=self.prior_evaluations + state.prior_evaluations,
                                      nerf_steps=self.nerf_steps + state.nerf_steps,
                                      message=f"frame {index + 1} of {count}"))
        return on_progress

"""generate_sequence: a photo and a keyframed expression in, one textured head per frame out.

    from joker.sequence import generate_sequence
    from joker_core.protocol import SequenceSpec
    result = generate_sequence("me.jpg", spec=SequenceSpec.from_dict({...}), out_dir="seq/")
    for frame in result.frames: print(frame.number, frame.glb)

Frame k starts from frame k-1's radiance field (a copy of its weights), and from its prior
targets where the rig barely moved; its budget follows the rig's motion (budget.py,
frames.py). Each frame is meshed and baked on its own (frame.py).

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

from joker_core.errors import JobCancelled
from joker_core.files import fresh_folder
from joker_core.protocol import SEQUENCE_GLB, ProgressEvent, SequenceSpec

from ..fit.jobs import write_fit
from ..generation.output import failed_folder, job_folder, write_inputs, write_json
from ..generation.runner import Tuning, make_head
from ..mesh.animated import AnimationSettings, SequenceGlb
from .frames import FrameDistiller
from .manifest import MANIFEST_NAME, Manifest, frame_folder_name

SEQUENCE_TUNING = Tuning(rig_topology=True)  # sequences: the rig topology by default (sequence.glb)

log = logging.getLogger("joker.sequence")


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
                      should_cancel: Callable[[], bool] | None = None, inputs_dir: Path | None = None,
                      overwrite: bool = False, tuning: Tuning | None = None) -> SequenceResult:
    """Run a sequence job; arguments as joker.api.generate's. Raises JokerError for bad
    input and JobCancelled on cancel, in both cases after the finished frames are written."""
    from ..prior.projection.photo import load_photo

    report = progress or (lambda event: None)
    cancelled = should_cancel or (lambda: False)
    if inputs_dir is None and isinstance(reference, (str, Path)):
        inputs_dir = Path(reference).parent
    photo = load_photo(reference)
    folder = fresh_folder(Path(out_dir), overwrite)  # live: the server lists frames as they land
    write_inputs(folder, photo, spec)
    manifest = Manifest(folder / MANIFEST_NAME, spec)
    manifest.write()
    try:
        frames = _Frames(photo, spec, inputs_dir or Path.cwd(), tuning or SEQUENCE_TUNING, folder, report, cancelled)
        write_fit(folder, frames.distiller.fit)
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


class _Frames:
    """Distils, writes and reports the frames of one sequence, in order."""

    def __init__(self, photo: np.ndarray, spec: SequenceSpec, inputs_dir: Path, tuning: Tuning, folder: Path,
                 report: Callable[[ProgressEvent], None], cancelled: Callable[[], bool]):
        self.distiller = FrameDistiller(photo, spec, inputs_dir, tuning.preset, volume=tuning.volume)
        self.spec, self.tuning, self.folder, self.report, self.cancelled = spec, tuning, folder, report, cancelled
        self.results: list[FrameResult] = []
        self.prior_evaluations = self.nerf_steps = 0
        self.animation: SequenceGlb | None = None  # sequence.glb: the frames in the rig's topology

    def run(self, index: int, manifest: Manifest) -> None:
        number = self.spec.frame_number(index)
        destination = self.folder / "frames" / frame_folder_name(number)
        if self.cancelled():
            raise JobCancelled()
        try:
            with job_folder(destination) as staging:
                frame = self.distiller.frame(index)

                def distil(previews, on_progress):
                    return frame.distil(previews, on_progress, self.cancelled).distillation

                head = make_head(frame.job, distil, staging, tuning=self.tuning,
                                 report=lambda event: self.report(self._in_sequence(event, index, number)),
                                 cancelled=self.cancelled)
                budget = frame.budget
                figures = {"warm": budget.warm, "held": budget.held, "budget_share": budget.share,
                           "rig_motion_m": budget.motion_m, "reused_targets": budget.reuse_targets, **head.figures}
                write_json(staging / "metrics.json", figures)
        except JobCancelled:
            shutil.rmtree(failed_folder(destination), ignore_errors=True)  # cancelled is not failed: no trace
            raise
        self.prior_evaluations += figures["prior_evaluations"]
        self.nerf_steps += figures["nerf_steps"]
        manifest.add_frame(index, figures)
        self._add_to_animation(number, head)
        frame_dir = self.folder / manifest.frames[-1]["folder"]
        self.results.append(FrameResult(index, number, frame_dir, frame_dir / "head.glb", figures))
        self.report(ProgressEvent(f"frame {number} finished", (index + 1) / len(self.spec.frames),
                                  prior_evaluations=self.prior_evaluations, nerf_steps=self.nerf_steps,
                                  message=f"{manifest.frames[-1]['glb']} ({index + 1}/{len(self.spec.frames)})"))

    def _add_to_animation(self, number: int, head) -> None:
        """sequence.glb, rewritten with every frame that has the rig's topology (the first
        is its base)."""
        if head.rig_mesh is None:
            return
        if self.animation is None:
            self.animation = SequenceGlb(self.folder / SEQUENCE_GLB, head.rig_mesh,
                                         AnimationSettings(per_frame_textures=self.spec.per_frame_textures,
                                                           unlit=self.spec.job.unlit))
        self.animation.add(number, head.rig_mesh)
        self.animation.write()

    def _in_sequence(self, event: ProgressEvent, index: int, number: int) -> ProgressEvent:
        """A frame's head progress (0..1) as the sequence's, with the frames before counted."""
        count = len(self.spec.frames)
        return dataclasses.replace(
            event, stage=f"frame {number}: {event.stage}", progress=min(1.0, (index + event.progress) / count),
            eta_s=None, message=event.message or f"frame {index + 1} of {count}", frame=number,
            prior_evaluations=self.prior_evaluations + event.prior_evaluations,
            nerf_steps=self.nerf_steps + event.nerf_steps)

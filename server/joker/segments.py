"""A long sequence split into segments that run at once on a Ray cluster.

Frame k of a sequence is warm-started from frame k-1, so one sequence runs frame after
frame. Split at chosen frames, each segment's first frame starts cold and the rest are warm
as before, so the segments run in parallel. The price: a cold frame costs more prior
evaluations than a warm one, and two neighbouring frames across a border did not share a
field (benchmarks measure both).

    from joker.segments import generate_segments, starts_at_frames
    folders = generate_segments("me.jpg", spec=sequence_spec, out_dir="seq/", starts=[0, 150],
                                ray_address="auto")
    # or at the rig's keyframes (scene frame numbers):
    starts = starts_at_frames(sequence_spec, keyframes)

`<out>/segment_NN/` is each segment's whole sequence folder (frames keep their scene
numbers); `<out>/segments.json` lists them. Segments finished before are not run again.
Every segment distils in the whole sequence's volume (whole_volume).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Sequence

from joker_core.errors import JokerError
from joker_core.head_model import load_model
from joker_core.protocol import SEQUENCE_MANIFEST, SequenceSpec

from .box import Box
from .generation.output import write_json

SEGMENTS_NAME = "segments.json"


def even_starts(frames: int, segments: int) -> list[int]:
    """The first frame index of each of `segments` segments of (nearly) equal length."""
    if not 1 <= segments <= frames:
        raise JokerError(f"cannot split {frames} frames into {segments} segments", f"ask for 1 to {frames} segments")
    return [round(index * frames / segments) for index in range(segments)]


def starts_at_frames(spec: SequenceSpec, frame_numbers: Sequence[int]) -> list[int]:
    """Segment starts at scene frames, e.g. the rig's keyframes: each segment begins at the
    first generated frame at or after one of `frame_numbers` (frames outside the sequence
    start nothing); index 0 always begins the first."""
    indices = {-(-(number - spec.frame_start) // spec.frame_step) for number in frame_numbers}  # ceiling
    return sorted({0} | {index for index in indices if 0 < index < len(spec.frames)})


def whole_volume(reference: Path, spec: SequenceSpec) -> Box:
    """The box of the unsplit sequence, which every segment distils in: a segment's own
    would leave out the other segments' heads, and its frames would differ from the
    unsplit run's."""
    from .fit.jobs import job_fit
    from .prior.projection.photo import load_photo
    from .sequence.frames import posed_frames, sequence_volume

    model = load_model(spec.job.model)
    return sequence_volume(model, posed_frames(spec, model, job_fit(spec.job, load_photo(reference), model)))


def split_sequence(spec: SequenceSpec, starts: Sequence[int]) -> list[SequenceSpec]:
    """The segments beginning at frame indices `starts` (the first must be 0), each numbered
    as the frames are in the whole sequence."""
    bounds = sorted(set(starts))
    if not bounds or bounds[0] != 0 or bounds[-1] >= len(spec.frames) or len(bounds) != len(starts):
        raise JokerError(f"segment starts {list(starts)} do not split frames 0..{len(spec.frames) - 1}",
                         "give distinct frame indices, the first one 0, all below the number of frames")
    ends = bounds[1:] + [len(spec.frames)]
    return [dataclasses.replace(spec, frames=spec.frames[start:end], frame_start=spec.frame_number(start))
            for start, end in zip(bounds, ends)]


def generate_segments(reference, *, spec: SequenceSpec, out_dir, starts: Sequence[int], ray_address: str,
                      tuning=None) -> list[Path]:
    """Run the segments as Ray tasks at once; the segment folders, in order. Raises the
    first segment's JokerError after every segment has ended (the others are kept)."""
    import ray

    from .batch_ray import connect_to, remote_runner, write_folder
    from .sequence import generate_sequence
    from .sequence.engine import SEQUENCE_TUNING

    reference, out_dir = Path(reference), Path(out_dir)
    segments = split_sequence(spec, starts)
    tuning = dataclasses.replace(tuning or SEQUENCE_TUNING, volume=whole_volume(reference, spec))
    folders = [out_dir / f"segment_{index + 1:02d}" for index in range(len(segments))]
    connect_to(ray_address)
    run = remote_runner()
    photo = reference.read_bytes()
    pending = {run.remote(generate_sequence, reference.name, photo, segment, tuning): folder
               for segment, folder in zip(segments, folders) if not _finished(folder)}
    errors = []
    for ref, folder in pending.items():
        error, files = ray.get(ref)
        write_folder(folder, files)
        if error is not None:
            errors.append(JokerError(f"{folder.name}: {error[0]}", error[1]))
    write_json(out_dir / SEGMENTS_NAME, {"segments": [
        {"folder": folder.name, "first_frame": segment.frame_start, "frames": len(segment.frames)}
        for segment, folder in zip(segments, folders)]})
    if errors:
        raise errors[0]
    return folders


def _finished(folder: Path) -> bool:
    try:
        return json.loads((folder / SEQUENCE_MANIFEST).read_text(encoding="utf-8")).get("state") == "finished"
    except (OSError, ValueError, AttributeError):
        return False

"""The rig's topology fitted to the distilled surface (issue 14's "Show"), on this machine.

Head: the astronaut screaming through the projection prior, as bench_generate.py makes it,
with the registered head besides the marching-cubes one. Prints the registered vertices'
distance to the marching-cubes surface (mean, p95, max; goal mean <= 1 mm, p95 <= 3 mm at
preview), the rig's own before fitting, flipped faces (goal 0), the registration's time,
and the mesh-render PSNR of both meshes against the targets (the same metric as
bench_generate's mesh figures; goal: registered within 0.5 dB of marching cubes).

Sequence (--frames N, N > 0): bench_sequence.py's warm-started expression ramp with the
rig's topology; per consecutive pair of frames, the registered vertices' motion minus the
rig's own, over the vertices the rig moved less than 0.1 mm (goal: mean below 0.5 mm).

    .venv/bin/python benchmarks/bench_register.py [--quality preview] [--test-size] [--frames 12] [--threads N]

--test-size runs the tests' head-sized engine (tests/tiny_engine.py SMALL; sequences:
bench_sequence.py --quick's preset): a smoke figure, not the goal's.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

import joker.api
import joker.sequence.engine
from joker.generation.mesh_metrics import mesh_fidelity
from joker.generation.runner import Tuning, make_head
from joker.sequence import generate_sequence
from joker_core.presets import get_preset
from joker_core.protocol import JobSpec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_sequence import quick, sequence_spec  # noqa: E402
from tiny_engine import SMALL  # noqa: E402

STILL_M = 1e-4  # a rig vertex that moved less than this between two frames did not move


class HeadSpy:
    """Keeps every (job, head) make_head made."""

    def __init__(self) -> None:
        self.made: list = []

    def __call__(self, job, *args, **kwargs):
        head = make_head(job, *args, **kwargs)
        self.made.append((job, head))
        return head


def single_head(args, tuning: Tuning) -> None:
    spy = HeadSpy()
    joker.api.make_head = spy
    spec = JobSpec.from_dict({"preset": "scream", "prompt": get_preset("scream").prompt, "quality": args.quality,
                              "device": args.device})
    started = time.perf_counter()
    joker.api.generate(data.astronaut(), spec=spec, out_dir=Path(tempfile.mkdtemp(prefix="bench_register_")) / "h",
                       tuning=tuning)
    wall = time.perf_counter() - started
    (job, head), = spy.made
    figures = head.registration.figures
    print(f"== registered head: astronaut, scream, {'test size' if args.test_size else args.quality} ==")
    mm = {key: 1e3 * value for key, value in figures.items() if key.endswith("_m")}
    print(f"distance to the marching-cubes surface: mean {mm['registered_to_mesh_mean_m']:.3f} mm (goal <= 1), "
          f"p95 {mm['registered_to_mesh_p95_m']:.3f} mm (goal <= 3), max {mm['registered_to_mesh_max_m']:.2f} mm")
    print(f"  the posed rig before fitting: mean {mm['rig_to_mesh_mean_m']:.3f} mm, p95 {mm['rig_to_mesh_p95_m']:.3f} mm")
    print(f"flipped faces: {figures['flipped_faces']} (goal 0); surface found for "
          f"{figures['surface_found_share']:.1%} of {figures['fitted_vertices']} vertices")
    print(f"registration + rig-UV bake CPU: {head.figures['mesh']['cpu_seconds'].get('register', float('nan')):.1f} s "
          f"(job wall {wall:.0f} s)")
    marching = mesh_fidelity(job, head.distillation, head.mesh, job.spec.seed)
    registered = mesh_fidelity(job, head.distillation, head.rig_mesh, job.spec.seed)
    for key, label in (("mesh_psnr_db", "held out"), ("mesh_back_psnr_db", "back")):
        print(f"mesh PSNR {label}: marching cubes {marching[key]:.2f} dB, registered {registered[key]:.2f} dB "
              f"({registered[key] - marching[key]:+.2f} dB; goal >= -0.5)")


def sequence(args, tuning: Tuning) -> None:
    spy = HeadSpy()
    joker.sequence.engine.make_head = spy
    spec = sequence_spec(args.frames, args.device, args.quality)
    started = time.perf_counter()
    generate_sequence(data.astronaut(), spec=spec, out_dir=Path(tempfile.mkdtemp(prefix="bench_register_")) / "s",
                      tuning=tuning)
    print(f"\n== {args.frames}-frame ramp, warm-started, rig topology ({time.perf_counter() - started:.0f} s) ==")
    print("pair  still_vertices  residual_mean_mm  residual_p95_mm  rig_motion_max_mm")
    residuals = []
    for index, ((_, before), (_, after)) in enumerate(zip(spy.made, spy.made[1:]), start=2):
        rig_before = before.registration.vertices - before.registration.offset
        rig_after = after.registration.vertices - after.registration.offset
        rig_motion = rig_after - rig_before
        still = (np.linalg.norm(rig_motion, axis=1) < STILL_M) & after.registration.moving
        residual = np.linalg.norm((after.registration.vertices - before.registration.vertices) - rig_motion, axis=1)[still]
        residuals.append(residual)
        if len(residual):
            print(f"{index - 1:2d}-{index:<2d} {still.sum():14d}  {1e3 * residual.mean():16.3f}  "
                  f"{1e3 * np.percentile(residual, 95):15.3f}  {1e3 * np.linalg.norm(rig_motion, axis=1).max():17.2f}")
    every = np.concatenate(residuals) if residuals else np.zeros(0)
    if len(every):
        print(f"jitter where the rig did not move: mean {1e3 * every.mean():.3f} mm (goal < 0.5), "
              f"p95 {1e3 * np.percentile(every, 95):.3f} mm over {len(every)} vertex-pairs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", default="preview")
    parser.add_argument("--test-size", action="store_true", help="the tests' head-sized engine: a smoke figure")
    parser.add_argument("--frames", type=int, default=0, help="also a warm-started ramp of this many frames")
    parser.add_argument("--no-head", action="store_true", help="only the sequence")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.no_head:
        single_head(args, dataclasses.replace(SMALL if args.test_size else Tuning(), rig_topology=True))
    if args.frames:
        from joker.distill.schedule import preset
        tuned = quick(preset(args.quality)) if args.test_size else None
        sequence(args, Tuning(preset=tuned, rig_topology=True))


if __name__ == "__main__":
    main()

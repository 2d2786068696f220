"""Warm-started sequence frames against cold (independent) frames, on this machine.

A 12-frame expression ramp (neutral, held; to "scream" and back, eased) is distilled twice
with the projection prior: as a sequence (frame k warm-started from frame k-1) and frame by
frame from scratch. Prints, per frame and in total:
  - fidelity: PSNR of the field against the projection-prior oracle on held-out views
    (the engine's metric), warm minus cold;
  - cost: prior evaluations and NeRF steps, warm as a share of cold;
  - flicker: mean absolute difference (0..255) between consecutive frames' renders, over
    the pixels whose rig normal map did not change between the two frames (unchanged regions).

    .venv/bin/python benchmarks/bench_sequence.py [--quality preview] [--frames 12] [--quick]
                                                  [--threads N] [--device cpu]

--quick shrinks the preset to test size (minutes on a shared 2-core CPU) for a smoke figure.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data

from joker.distill.rays import CameraSet
from joker.distill.render import render_images
from joker.distill.schedule import ViewGrid, preset
from joker.distill.field import FieldConfig
from joker.generation import metrics
from joker.render.head_views import render_head
from joker.sequence.frames import FrameDistiller
from joker_core.cameras import ViewRig
from joker_core.demo_head import load_demo_head
from joker_core.presets import get_preset
from joker_core.protocol import SequenceSpec

FLICKER_SIZE = 128
UNCHANGED_NORMAL = 2  # encoded normal channels may differ by this much (rounding) and count as unchanged


def ramp(frames: int) -> list[float]:
    """Expression weight per frame: two neutral frames, an eased rise to 1, back down."""
    rise = frames - 2
    phase = np.linspace(0.0, 2.0, rise)
    weights = np.where(phase <= 1.0, phase, 2.0 - phase)
    return [0.0, 0.0] + [round(float(0.5 - 0.5 * np.cos(np.pi * w)), 9) for w in weights]  # rounded: rise = fall


def sequence_spec(frames: int, device: str, quality: str) -> SequenceSpec:
    model = load_demo_head()
    neutral = get_preset("neutral").params_for(model).to_dict()
    scream = get_preset("scream").params_for(model).to_dict()
    rigs = [{key: [(1 - t) * a + t * b for a, b in zip(neutral[key], scream[key])] for key in scream}
            for t in ramp(frames)]
    return SequenceSpec.from_dict({"job": {"quality": quality, "device": device, "seed": 0},
                                   "frames": [{"rig": rig} for rig in rigs]})


def quick(base):
    return dataclasses.replace(
        base, schedule=dataclasses.replace(base.schedule, iterations=150, refresh_interval=25, level_stride=15,
                                           k_steps=3, resolutions=((0, 48),), patches=4, patch_size=24),
        views=ViewGrid(4, 3, size=48), field=FieldConfig(resolutions=(16, 48), channels=6, hidden=32),
        samples_per_ray=24)


def run(spec: SequenceSpec, warm: bool, tuned) -> list[dict]:
    distiller = FrameDistiller(data.astronaut(), spec, Path.cwd(), preset=tuned, warm=warm)
    rows, done = [], {}
    for index in range(len(spec.frames)):
        frame_rig = json.dumps(spec.frames[index].to_dict(), sort_keys=True)
        if not warm and frame_rig in done:  # from scratch under one seed, a frame is a function of its rig
            rows.append(rows[done[frame_rig]])
            print(f"  cold frame {index + 1:2d}: the rig of frame {done[frame_rig] + 1}, the same result", flush=True)
            continue
        done.setdefault(frame_rig, index)
        started = time.monotonic()
        frame = distiller.distil(index)
        result, job = frame.distillation, frame.job
        rig = ViewRig(job.view_rig.center, job.view_rig.distance, job.view_rig.fov_deg, FLICKER_SIZE)
        cameras = rig.grid(3, 1, 30.0, 0.0)  # fixed cameras, the same for every frame
        renders = render_images(result.field, CameraSet(cameras, job.device), range(len(cameras)), FLICKER_SIZE,
                                job.preset.samples_per_ray, occupancy=result.occupancy).cpu()
        normals = np.stack([m.encoded() for m in render_head(job.model, job.params, cameras)])
        rows.append({"psnr": metrics.held_out_psnr(job, result, spec.job.seed), "evals": result.prior_evaluations,
                     "steps": result.nerf_steps, "share": frame.budget.share, "motion": frame.budget.motion_m,
                     "seconds": time.monotonic() - started, "renders": renders, "normals": normals})
        print(f"  {'warm' if warm else 'cold'} frame {index + 1:2d}: {rows[-1]['psnr']:.2f} dB, "
              f"{result.prior_evaluations} evals, {result.nerf_steps} steps, {rows[-1]['seconds']:.1f} s", flush=True)
    return rows


def flicker(rows: list[dict]) -> tuple[float, list[float]]:
    """Mean |render_k - render_k-1| (0..255) over unchanged, on-head pixels: over all
    consecutive pairs, and per pair (frame k against k-1, k = 2..)."""
    total, count, pairs = 0.0, 0, []
    for before, after in zip(rows, rows[1:]):
        unchanged = (np.abs(before["normals"].astype(int) - after["normals"].astype(int)).max(-1) <= UNCHANGED_NORMAL)
        on_head = (before["normals"].max(-1) > 0) & (after["normals"].max(-1) > 0)
        region = torch.from_numpy(unchanged & on_head)  # views x H x W
        difference = (after["renders"] - before["renders"]).abs().mean(1) * 255.0
        total += float(difference[region].sum())
        count += int(region.sum())
        pairs.append(float(difference[region].mean()) if region.any() else 0.0)
    return total / max(count, 1), pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quality", default="preview")
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="test-size preset: a smoke figure in minutes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = sequence_spec(args.frames, args.device, args.quality)
    tuned = quick(preset(args.quality)) if args.quick else None
    print(f"{args.frames} frames, quality {args.quality}{' (quick)' if args.quick else ''}, "
          f"{torch.get_num_threads()} threads, device {args.device}")
    warm, cold = run(spec, True, tuned), run(spec, False, tuned)
    (warm_flicker, warm_pairs), (cold_flicker, cold_pairs) = flicker(warm), flicker(cold)
    print("\nframe  motion_mm  share  warm_dB  cold_dB  delta_dB  evals_share  steps_share  flicker_warm  flicker_cold")
    for index, (w, c) in enumerate(zip(warm, cold)):
        pair = f"{warm_pairs[index - 1]:12.2f}  {cold_pairs[index - 1]:12.2f}" if index else f"{'':12}  {'':12}"
        print(f"{index + 1:5d}  {1000 * w['motion']:9.2f}  {w['share']:5.2f}  {w['psnr']:7.2f}  {c['psnr']:7.2f}  "
              f"{w['psnr'] - c['psnr']:+8.2f}  {w['evals'] / c['evals']:11.2f}  {w['steps'] / c['steps']:11.2f}  {pair}")
    later = list(zip(warm, cold))[1:]  # frame 1 is cold in both runs
    print(f"\nwarm frames 2..{args.frames}: worst PSNR delta {min(w['psnr'] - c['psnr'] for w, c in later):+.2f} dB, "
          f"mean {np.mean([w['psnr'] - c['psnr'] for w, c in later]):+.2f} dB")
    print(f"  prior evaluations {sum(w['evals'] for w, _ in later)} vs {sum(c['evals'] for _, c in later)} "
          f"({sum(w['evals'] for w, _ in later) / sum(c['evals'] for _, c in later):.0%}), worst frame "
          f"{max(w['evals'] / c['evals'] for w, c in later):.0%}")
    print(f"  NeRF steps {sum(w['steps'] for w, _ in later)} vs {sum(c['steps'] for _, c in later)} "
          f"({sum(w['steps'] for w, _ in later) / sum(c['steps'] for _, c in later):.0%}), worst frame "
          f"{max(w['steps'] / c['steps'] for w, c in later):.0%}")
    print(f"  distill wall time {sum(w['seconds'] for w in warm):.0f} s warm vs {sum(c['seconds'] for c in cold):.0f} s cold")
    print(f"flicker (mean abs difference of unchanged regions, 0..255): warm {warm_flicker:.2f}, "
          f"independent {cold_flicker:.2f}")


if __name__ == "__main__":
    main()

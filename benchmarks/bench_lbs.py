"""LBS throughput (heads per second) on a FLAME-sized synthetic model: numpy and torch,
batch 1 and 64, all 300 identity + 100 expression components and all five joints posed.

    .venv/bin/python benchmarks/bench_lbs.py [--seconds 1.0] [--threads N]

On a loaded machine torch's intra-op threads can wait on each other; compare --threads 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from flame_fixtures import make_small_head_model  # noqa: E402  (the tests' synthetic FLAME-layout head)

from joker.rig.lbs_torch import batch_params, lbs, torch_rig  # noqa: E402
from joker_core.lbs import forward, numpy_rig  # noqa: E402
from joker_core.rig_params import POSE_FIELDS, RigParams  # noqa: E402

FLAME_VERTICES = 5023


def flame_sized_model():
    """The fixture head on a 59 x 85 grid (5,017 vertices), padded to FLAME's 5,023 with
    copies of its first vertices so every array has FLAME's exact size."""
    model = make_small_head_model(n_lat=59, n_lon=85)
    extra = FLAME_VERTICES - model.n_vertices

    def pad(array):
        return np.concatenate([array, array[:extra]])

    return dataclasses.replace(
        model, v_template=pad(model.v_template), shapedirs=pad(model.shapedirs), posedirs=pad(model.posedirs),
        weights=pad(model.weights), J_regressor=np.pad(model.J_regressor, ((0, 0), (0, extra))),
        face_region=pad(model.face_region)).validate()


def heads_per_second(run: Callable[[], object], batch: int, seconds: float) -> float:
    run()  # warm-up (allocations, torch kernels)
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        run()
        calls += 1
    return calls * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model = flame_sized_model()
    rng = np.random.default_rng(0)
    params = [RigParams(shape=rng.normal(size=300), expression=rng.normal(size=100),
                        translation=rng.normal(scale=0.01, size=3),
                        **{name: rng.normal(scale=0.2, size=3) for name in POSE_FIELDS}) for _ in range(64)]
    print(f"model: {model.n_vertices} vertices, {model.n_shape}+{model.n_expr} components, {model.n_joints} joints")
    print(f"cpu: {os.cpu_count()} cores visible, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.1f}")

    rig = numpy_rig(model)
    for batch in (1, 64):
        inputs = {name: np.stack([getattr(p, name) for p in params[:batch]]) for name in ("shape", "expression", "translation")}
        rotations = np.stack([p.rotations for p in params[:batch]])
        rate = heads_per_second(lambda: forward(rig, inputs["shape"], inputs["expression"], rotations,
                                                inputs["translation"]), batch, args.seconds)
        print(f"numpy float64      batch {batch:3d}: {rate:10.1f} heads/s")

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        rig_t = torch_rig(model, device=device, dtype=torch.float32)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
        for batch in (1, 64):
            tensors = batch_params(params[:batch], rig_t)

            def run_forward():
                with torch.no_grad():
                    lbs(rig_t, **tensors)
                sync()

            rate = heads_per_second(run_forward, batch, args.seconds)
            print(f"torch float32 {device:4s} batch {batch:3d}: {rate:10.1f} heads/s")
        grads = {name: tensor.clone().requires_grad_() for name, tensor in batch_params(params, rig_t).items()}

        def run_backward():
            lbs(rig_t, **grads).vertices.square().sum().backward()
            sync()

        rate = heads_per_second(run_backward, 64, args.seconds)
        print(f"torch float32 {device:4s} batch  64: {rate:10.1f} heads/s forward+backward")


if __name__ == "__main__":
    main()

"""Time per normal map of the demo head on ONE CPU core (goal: <= 0.5 s at 512 x 512).

Prints, per image size, the median time of a full normal map (rasterize + smooth normals
+ encode-ready maps) from the front and over a 5 x 3 grid of the view rig, with the
candidate/hit counts that drive the cost; then the same on CUDA if a device is present.

    .venv/bin/python benchmarks/bench_raster.py
"""

from __future__ import annotations

import statistics
import time

import torch

from joker_core.demo_head import load_demo_head
from joker_core.framing import head_view_rig
from joker_core.presets import get_preset
from joker.render.head_views import render_head
from joker.render.normal_maps import render_normal_map
from joker.rig.lbs_torch import batch_params, lbs, torch_rig

GOAL_S = 0.5
REPEATS = 5


def _median_seconds(run, device: str) -> float:
    run()  # warm-up (allocator, kernels)
    times = []
    for _ in range(REPEATS):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(device: str) -> None:
    model = load_demo_head()
    with torch.no_grad():
        rig_arrays = torch_rig(model, device)
        vertices = lbs(rig_arrays, **batch_params([get_preset("scream").params_for(model)], rig_arrays)).vertices[0]
    faces = torch.as_tensor(model.faces, device=device)
    print(f"demo head: {model.n_vertices} vertices, {len(model.faces)} triangles, preset 'scream'; device {device}")
    for size in (256, 512, 1024):
        rig = head_view_rig(model, size=size)
        front = rig.camera(0, 0)
        grid = rig.grid(5, 3)
        front_s = _median_seconds(lambda: render_normal_map(vertices, faces, front), device)
        grid_s = _median_seconds(lambda: [render_normal_map(vertices, faces, c) for c in grid], device) / len(grid)
        coverage = render_normal_map(vertices, faces, front).mask.float().mean().item()
        print(f"  {size:4d} px: front {front_s * 1000:7.1f} ms, grid 5x3 {grid_s * 1000:7.1f} ms/view, "
              f"head covers {coverage:.0%} of the image")
        if size == 512 and device == "cpu":
            worst = max(front_s, grid_s)
            print(f"  goal <= {GOAL_S} s per 512 px view on one core: {'met' if worst <= GOAL_S else 'MISSED'}")
    rig = head_view_rig(model, size=512)
    cameras = rig.grid(5, 3)
    total = _median_seconds(lambda: render_head(model, get_preset("scream").params_for(model), cameras,
                                                mode="face", device=device), device)
    print(f"  render_head, pose + 15 face-mode views at 512 px: {total:.2f} s ({total / 15 * 1000:.0f} ms/view)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    bench("cpu")
    if torch.cuda.is_available():
        bench("cuda")

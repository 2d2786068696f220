"""Distillation figures on this machine.

Default (--compare): the preview preset before and after issue 13, side by side in ONE run
(the machine is shared, so only ratios measured together mean anything): the README's job
(astronaut, scream, projection prior) through joker.api.generate with each preset; wall and
CPU time of the distillation, composited samples per training ray, held-out PSNR and face
Chamfer. --profile: where a preview distillation's time goes. --fit: field representations,
samples per ray and a preset against the demo-head or ellipsoid oracle.

    .venv/bin/python benchmarks/bench_distill.py [--compare] [--threads 1] [--iterations N]
    .venv/bin/python benchmarks/bench_distill.py --profile [--iterations N]
    .venv/bin/python benchmarks/bench_distill.py --fit [--preset preview] [--oracle head|ellipsoid]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import pstats
import tempfile
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from joker.distill import Box, RadianceField, Schedule, distill, preset
from joker.distill import distiller as distiller_module
from joker.distill.field import HashGrid, HashGridConfig, TriPlane
from joker.distill.losses import psnr
from joker.distill.rays import CameraSet
from joker.distill.render import render_images
from joker.prior.base import Condition, NoiseLevels
from joker.prior.oracle import EllipsoidOracle, MeshOracle
from joker.render.normal_maps import vertex_normals
from joker_core.cameras import ViewRig
from joker_core.demo_head import load_demo_head
from joker_core.framing import bounding_sphere, head_view_rig


class DenseGrid(nn.Module):
    """A 3D feature grid with trilinear lookups: the obvious alternative to a tri-plane."""

    def __init__(self, resolution: int, channels: int):
        super().__init__()
        self.grid = nn.Parameter(torch.empty(1, channels, resolution, resolution, resolution).uniform_(-0.1, 0.1))

    def forward(self, points):
        return F.grid_sample(self.grid, points[None, None, None], align_corners=True)[0, :, 0, 0].T


def seconds_per_call(function, repeats=3) -> float:
    function()
    start = time.perf_counter()
    for _ in range(repeats):
        function()
    return (time.perf_counter() - start) / repeats


def compare_encodings(points: int = 65_536) -> None:
    print(f"\n== encodings: forward + backward of {points} points, then a 64-wide MLP ==")
    generator = torch.Generator().manual_seed(0)
    xyz = torch.rand(points, 3, generator=generator) * 2 - 1
    candidates = {"tri-plane 32+128 x 8ch (ours)": TriPlane((32, 128), 8),
                  "tri-plane 64+256+512 x 16ch": TriPlane((64, 256, 512), 16),
                  "dense grid 64^3 x 8ch": DenseGrid(64, 8),
                  "hash grid 16 x 2, 2^19 (published)": HashGrid(HashGridConfig())}
    baseline = None
    for name, encoding in candidates.items():
        width = encoding(xyz[:2]).shape[-1]
        mlp = nn.Sequential(nn.Linear(width, 64), nn.ReLU(), nn.Linear(64, 4))
        seconds = seconds_per_call(lambda: mlp(encoding(xyz)).sum().backward())
        baseline = baseline or seconds
        print(f"{name:38s} {seconds * 1e3:8.1f} ms  {points / seconds / 1e6:6.2f} M points/s"
              f"  x{seconds / baseline:5.1f}")


def held_out_fidelity(field, occupancy, oracle, rig, width, samples, count=6) -> tuple[float, float]:
    """PSNR against the oracle on random views that were not training views."""
    sized = ViewRig(rig.center, rig.distance, rig.fov_deg, width)
    cameras = sized.random(count, azimuth_range=40, elevation_range=15, seed=123)
    truth = oracle.render(cameras)[0]
    start = time.perf_counter()
    device = next(field.parameters()).device
    renders = render_images(field, CameraSet(cameras, device), range(count), width, samples, occupancy).cpu()
    return psnr(renders, truth), (time.perf_counter() - start) / count


def demo_head_oracle(levels: NoiseLevels) -> tuple[MeshOracle, ViewRig, Box]:
    """The built-in demo head, coloured with the ellipsoid oracle's pattern and shading."""
    head = load_demo_head()
    vertices = torch.tensor(head.v_template, dtype=torch.float32)
    faces = torch.tensor(head.faces, dtype=torch.int64)
    centre, radius = bounding_sphere(head.v_template)
    pattern = EllipsoidOracle(center=tuple(centre), radii=(radius / 2,) * 3)
    colors = pattern.surface_color(head.v_template, vertex_normals(vertices, faces).numpy())
    oracle = MeshOracle(vertices=vertices, faces=faces, colors=torch.tensor(colors), levels=levels)
    return oracle, head_view_rig(head), Box(tuple(centre), radius * 1.05)


def fit(name: str, shape: str, device: str = "cpu") -> None:
    chosen = preset(name)
    levels = NoiseLevels(100, 1000)
    if shape == "head":
        oracle, rig, box = demo_head_oracle(levels)
    else:
        oracle, rig, box = EllipsoidOracle(levels=levels), ViewRig(), Box()
    views = oracle.views(chosen.views.cameras(rig))
    condition = Condition(torch.zeros(1, 3, 8, 8))
    print(f"\n== preset {name!r} on the {shape} oracle: {len(views)} views at {chosen.views.size} px, "
          f"{chosen.schedule.iterations} iterations, {chosen.samples_per_ray} samples/ray, on {device} ==")
    cpu_start = time.process_time()
    result = distill(oracle, views, condition, chosen, seed=0, box=box, device=device)
    cpu = time.process_time() - cpu_start
    width = chosen.views.size
    fidelity, seconds = held_out_fidelity(result.field, result.occupancy, oracle, rig, width,
                                          chosen.samples_per_ray)
    print(f"wall {result.seconds:.1f} s, process CPU {cpu:.1f} s, prior evaluations "
          f"{result.prior_evaluations}, NeRF steps {result.nerf_steps}, final loss {result.final_loss:.4f}, "
          f"{result.samples_per_ray:.1f} composited samples per training ray ({type(result.occupancy).__name__})")
    print(f"held-out PSNR vs oracle at {width} px: {fidelity:.2f} dB (goal >= 28), "
          f"{seconds:.2f} s per rendered view; occupied cells "
          f"{result.occupancy.occupied_fraction:.1%}" if result.occupancy else "")
    if shape == "ellipsoid":
        print_surface_density(result.field, oracle)
    print("\n== samples per ray: held-out PSNR of the fitted field ==")
    for samples in (16, 32, 48, 96, 192):
        fidelity, seconds = held_out_fidelity(result.field, result.occupancy, oracle, rig, width, samples)
        print(f"{samples:4d} samples: {fidelity:6.2f} dB, {seconds:.2f} s per {width} px view")


def print_surface_density(field: RadianceField, oracle: EllipsoidOracle) -> None:
    """Density just inside, on and just outside the true surface: where a mesh's iso level goes."""
    directions = F.normalize(torch.randn(4096, 3, generator=torch.Generator().manual_seed(0)), dim=-1)
    radii, center = torch.tensor(oracle.radii), torch.tensor(oracle.center)
    cells = []
    for scale in (0.9, 1.0, 1.1):
        density = field.density(center + scale * directions * radii)
        cells.append(f"{scale:.1f}x: {density.median().item():8.1f}")
    print("median density at the oracle surface scaled by " + ", ".join(cells))


def prior_costs() -> None:
    levels = NoiseLevels(100, 1000)
    print("\n== prior evaluations per head (a CFG pair counts once) ==")
    published = preset("published").schedule.prior_evaluations(levels, 400)
    for name in ("published", "high", "standard", "preview"):
        chosen = preset(name)
        views = chosen.views.azimuths * chosen.views.elevations
        count = chosen.schedule.prior_evaluations(levels, views)
        print(f"{name:10s} {views:4d} views  {count:6d} evaluations  ({published / count:6.1f}x fewer than "
              f"published)  {chosen.schedule.iterations:6d} NeRF steps")


# The preview preset as it was before issue 13 (run with today's code: same compositing).
OLD_PREVIEW = dataclasses.replace(
    preset("preview"),
    schedule=Schedule(iterations=900, refresh_interval=50, level_stride=10, k_steps=4,
                      resolutions=((0, 64), (150, 128)), patches=4, patch_size=32),
    samples_per_ray=32, march=False, occupancy_threshold=0.1, occupancy_dilation=True,
    rig=dataclasses.replace(preset("preview").rig, rays=1024))


def run_job(chosen, seed: int = 0) -> dict:
    """The README's job with `chosen` as its preset: the job's figures plus the distillation's
    own wall and CPU seconds and composited samples per ray (read off its result)."""
    from skimage import data

    from joker.api import Tuning, generate
    from joker_core.presets import get_preset
    from joker_core.protocol import JobSpec

    captured = {}
    real = distiller_module.distill

    def timed(*args, **kwargs):
        cpu = time.process_time()
        result = real(*args, **kwargs)
        captured.update(cpu=time.process_time() - cpu, wall=result.seconds, samples=result.samples_per_ray)
        return result

    spec = JobSpec.from_dict({"preset": "scream", "prompt": get_preset("scream").prompt, "quality": "preview",
                              "device": "cpu", "seed": seed})
    distiller_module.distill = timed  # api._run imports it at call time
    try:
        out = Path(tempfile.mkdtemp(prefix="bench_distill_")) / "head"
        figures = generate(data.astronaut(), spec=spec, out_dir=out, overwrite=True,
                           tuning=Tuning(preset=chosen)).figures
    finally:
        distiller_module.distill = real
    return {**figures, **captured}


def with_iterations(chosen, iterations: int):
    if not iterations:
        return chosen
    return dataclasses.replace(chosen, schedule=dataclasses.replace(chosen.schedule, iterations=iterations))


def compare_preview(iterations: int, seeds: list[int]) -> None:
    rows = [("old preview", with_iterations(OLD_PREVIEW, iterations)),
            ("new preview", with_iterations(preset("preview"), iterations))]
    print(f"\n== preview before and after, one run, {torch.get_num_threads()} torch thread(s), seeds {seeds} ==")
    results = {name: [run_job(chosen, seed) for seed in seeds] for name, chosen in rows}
    columns = [("distill wall s", "wall", "{:8.1f}"), ("distill CPU s", "cpu", "{:8.1f}"),
               ("samples/ray", "samples", "{:8.1f}"), ("PSNR dB", "held_out_psnr_db", "{:8.2f}"),
               ("Chamfer all %", "face_chamfer_percent_of_head_height", "{:8.2f}"),
               ("Chamfer seen %", "face_chamfer_visible_percent_of_head_height", "{:8.2f}")]
    print(f"{'':12s}" + "".join(f"{label:>16s}" for label, _, _ in columns))
    means = {}
    for name, runs in results.items():
        means[name] = {key: sum(run[key] for run in runs) / len(runs) for _, key, _ in columns}
        for seed, run in zip(seeds, runs):
            print(f"{name + ' s' + str(seed):12s}" + "".join(f"{fmt.format(run[key]):>16s}" for _, key, fmt in columns))
    old, new = means["old preview"], means["new preview"]
    print(f"speed-up: wall x{old['wall'] / new['wall']:.2f}, CPU x{old['cpu'] / new['cpu']:.2f} (goal >= 2); "
          f"samples/ray x{old['samples'] / new['samples']:.2f}; PSNR {new['held_out_psnr_db'] - old['held_out_psnr_db']:+.2f} dB; "
          f"Chamfer all {new['face_chamfer_percent_of_head_height'] - old['face_chamfer_percent_of_head_height']:+.2f}, "
          f"seen {new['face_chamfer_visible_percent_of_head_height'] - old['face_chamfer_visible_percent_of_head_height']:+.2f} "
          "points of head height (goal: PSNR >= old, Chamfer <= old)")


# Where the time of a distillation goes: these functions' cumulative time, as shares of the whole.
PROFILED = [("NeRF step (all of it)", "distiller.py", "_step"),
            ("  backward pass", "__init__.py", "backward"),
            ("  training-patch render", "distiller.py", "_render"),
            ("  rig loss (orbit rays, volume)", "distiller.py", "_rig_loss"),
            ("  occupancy-grid updates", "occupancy.py", "update"),
            ("field queries (forward)", "field.py", "query_unit"),
            ("  tri-plane lookups", "field.py", "forward"),
            ("sample placement + skipping", "render.py", "ray_samples"),
            ("  occupancy lookups", "occupancy.py", "samples"),
            ("compositing (nerfacc)", "render.py", "composite_weights"),
            ("target refreshes (render + prior)", "distiller.py", "_refresh")]


def profile_preview(chosen, iterations: int) -> None:
    chosen = with_iterations(chosen, iterations)
    print(f"\n== profile: {chosen.name}, {chosen.schedule.iterations} iterations, "
          f"{torch.get_num_threads()} torch thread(s) ==")
    profiler = cProfile.Profile()
    profiler.enable()
    figures = run_job(chosen)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    total = figures["wall"]
    print(f"distillation {total:.1f} s wall, {figures['cpu']:.1f} s CPU, {figures['samples']:.1f} samples/ray")
    for label, filename, function in PROFILED:
        seconds = sum(entry[3] for (path, _, name), entry in stats.items()
                      if path.endswith(filename) and name == function)
        print(f"{label:36s} {seconds:8.1f} s  {100 * seconds / total:5.1f} %")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--compare", action="store_true", help="old vs new preview, side by side (default)")
    mode.add_argument("--profile", action="store_true", help="where a preview distillation's time goes")
    mode.add_argument("--fit", action="store_true", help="encodings, prior costs and a fit to an oracle")
    parser.add_argument("--old", action="store_true", help="--profile the old preview instead of the new")
    parser.add_argument("--iterations", type=int, default=0, help="replace the presets' iterations")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="job seeds (--compare)")
    parser.add_argument("--preset", default="preview")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="--fit on this device (cpu, cuda)")
    parser.add_argument("--oracle", choices=("head", "ellipsoid"), default="head",
                        help="fit the demo head mesh or the analytic ellipsoid")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    if args.profile:
        profile_preview(OLD_PREVIEW if args.old else preset("preview"), args.iterations)
    elif args.fit:
        prior_costs()
        compare_encodings()
        fit(args.preset, args.oracle, args.device)
    else:
        compare_preview(args.iterations, args.seeds)


if __name__ == "__main__":
    main()

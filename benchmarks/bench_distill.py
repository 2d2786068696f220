"""Distillation figures on this machine.

Default (--compare): the preview preset before and after issue 13, side by side in ONE run
(the machine is shared, so only ratios measured together mean anything): the README's job
(astronaut, scream, projection prior) through joker.api.generate with each preset; wall and
CPU time of the distillation, composited samples per training ray, held-out PSNR and face
Chamfer. --profile: where a preview distillation's time goes. --fit: field representations,
samples per ray and a preset against the demo-head or ellipsoid oracle.

    .venv/bin/python benchmarks/bench_distill.py [--compare] [--threads 1] [--iterations N]
        [--seeds 0 1 2] [--variants old new ...] [--jobs 2]
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
    rig=dataclasses.replace(preset("preview").rig, rays=1024, prefit_steps=0))


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


def variant(iterations: int, refresh_interval: int = 50, lr_end: float = 1.0, rig_rays: int = 1024,
            patches: int = 4, depth: float | None = None, prefit: int = 0, first_level: int = 0,
            prefit_band: float = 0.004):
    """The preview preset with its schedule's length, refresh interval, patches per step,
    rate annealing, orbit rays per step, rig depth weight, density pre-fit (steps, band) and
    first noise level replaced: the levers --compare ranks."""
    chosen = preset("preview")
    schedule = dataclasses.replace(chosen.schedule, iterations=iterations, refresh_interval=refresh_interval,
                                   patches=patches, first_level=first_level)
    losses = chosen.losses if depth is None else dataclasses.replace(chosen.losses, depth=depth)
    return dataclasses.replace(chosen, schedule=schedule, lr_end=lr_end, losses=losses,
                               rig=dataclasses.replace(chosen.rig, rays=rig_rays, prefit_steps=prefit,
                                                       prefit_band=prefit_band))


# --compare's rows by name ("old" is the baseline every ratio is taken against).
VARIANTS = {
    "old": lambda: OLD_PREVIEW,
    "new": lambda: preset("preview"),  # = 600pfb12 since the pre-fit
    "600": lambda: variant(600),         # the preset before the pre-fit
    "540r30a30": lambda: variant(540, 30, lr_end=0.3),
    "540r30a30rig512": lambda: variant(540, 30, lr_end=0.3, rig_rays=512),
    "500r30a30rig512": lambda: variant(500, 30, lr_end=0.3, rig_rays=512),
    "560r30p3": lambda: variant(560, 30, patches=3),
    "560r30p3a30": lambda: variant(560, 30, lr_end=0.3, patches=3),
    # Refresh every 50 kept (stage 2 from step 300, as today's preset): fewer photometric
    # patches per step with the rig's rays and volume points untouched, or fewer steps.
    "600p3": lambda: variant(600, patches=3),
    "600p3d1": lambda: variant(600, patches=3, depth=1.0),
    "660p3": lambda: variant(660, patches=3),
    "660p3d1": lambda: variant(660, patches=3, depth=1.0),
    "560": lambda: variant(560),
    # Every photometric patch (and its depth target on the face) kept, half the orbit rays.
    "600rig512": lambda: variant(600, rig_rays=512),
    # A photometric patch's rays moved to the orbit (per ray, orbit rays place the seen face more).
    "600p3rig1536": lambda: variant(600, patches=3, rig_rays=1536),
    "600p2rig2048": lambda: variant(600, patches=2, rig_rays=2048),
    # The field's density pre-fitted to the rig (100 steps of field queries) before the
    # photometric steps; f20: stage 1 starts at level 20, the pre-fit standing in for the
    # noisiest refreshes' coarse shape.
    "600pf": lambda: variant(600, prefit=100),
    "600f20pf": lambda: variant(600, prefit=100, first_level=20),
    # The pre-fit's surface ramp over 12 mm (about one sample step) instead of 4: a softer
    # start; or a fifth photometric patch, bought with the CPU the pre-fit saves.
    "600pfb12": lambda: variant(600, prefit=100, prefit_band=0.012),
    "600pfp5": lambda: variant(600, prefit=100, patches=5),
    "540pf": lambda: variant(540, prefit=100),
    "500f20pf": lambda: variant(500, prefit=100, first_level=20),
    "450f20pf": lambda: variant(450, prefit=100, first_level=20),
}
COLUMNS = [("distill wall s", "wall", "{:.1f}"), ("distill CPU s", "cpu", "{:.1f}"),
           ("samples/ray", "samples", "{:.2f}"), ("PSNR dB", "held_out_psnr_db", "{:.2f}"),
           ("Chamfer all %", "face_chamfer_percent_of_head_height", "{:.3f}"),
           ("Chamfer seen %", "face_chamfer_visible_percent_of_head_height", "{:.3f}")]


def _job_in_worker(name: str, seed: int, iterations: int, threads: int | None) -> dict:
    if threads:
        torch.set_num_threads(threads)
    return run_job(with_iterations(VARIANTS[name](), iterations), seed)


def mean_spread(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value)."""
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else 0.0
    return mean, spread


def compare_preview(iterations: int, seeds: list[int], names: list[str], jobs: int, threads: int | None) -> None:
    """Every (variant, seed) job of one run, `jobs` at a time in worker processes (each its
    own CPU clock), then per variant: every seed, mean +- sd, and against "old" the ratio of
    mean CPU and the mean +- sd of the per-seed differences (same seed, same job)."""
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from multiprocessing import get_context

    names = ["old"] + [name for name in names if name != "old"]
    print(f"\n== preview variants, one run, {threads or torch.get_num_threads()} torch thread(s) per job, "
          f"{jobs} job(s) at a time, seeds {seeds} ==")
    # Seed-major order, so every variant meets the same mix of load from the other jobs.
    order = [(name, seed) for seed in seeds for name in names]
    with ProcessPoolExecutor(jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_job_in_worker, *key, iterations, threads): key for key in order}
        results = {}
        for future in as_completed(futures):  # each as it ends: a long run shows progress
            name, seed = key = futures[future]
            results[key] = future.result()
            print(f"done {name} s{seed}: " + ", ".join(f"{label} {fmt.format(results[key][field])}"
                                                      for label, field, fmt in COLUMNS), flush=True)
    print(f"{'':22s}" + "".join(f"{label:>16s}" for label, _, _ in COLUMNS))
    for name in names:
        for seed in seeds:
            run = results[name, seed]
            print(f"{name + ' s' + str(seed):22s}" + "".join(f"{fmt.format(run[key]):>16s}" for _, key, fmt in COLUMNS))
    print("mean +- sd over seeds:")
    means = {}
    for name in names:
        cells = []
        for _, key, fmt in COLUMNS:
            mean, spread = mean_spread([results[name, seed][key] for seed in seeds])
            means[name, key] = mean
            cells.append(f"{fmt.format(mean)}+-{fmt.format(spread)}")
        print(f"{name:22s}" + "".join(f"{cell:>16s}" for cell in cells))
    print("against old (CPU and samples: ratio of means; the rest: mean +- sd of the per-seed difference):")
    for name in names[1:]:
        deltas = [mean_spread([results[name, seed][key] - results["old", seed][key] for seed in seeds])
                  for key in ("held_out_psnr_db", "face_chamfer_percent_of_head_height",
                              "face_chamfer_visible_percent_of_head_height")]
        (psnr_delta, psnr_sd), (all_delta, all_sd), (seen_delta, seen_sd) = deltas
        print(f"{name:22s} CPU x{means['old', 'cpu'] / means[name, 'cpu']:.2f} (goal >= 2), "
              f"samples/ray x{means['old', 'samples'] / means[name, 'samples']:.2f} fewer, "
              f"PSNR {psnr_delta:+.2f}+-{psnr_sd:.2f} dB, Chamfer all {all_delta:+.3f}+-{all_sd:.3f}, "
              f"seen {seen_delta:+.3f}+-{seen_sd:.3f} points (goal: PSNR >= 0, Chamfer <= 0)")


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
    parser.add_argument("--variants", nargs="+", default=["old", "new"], choices=sorted(VARIANTS),
                        help="--compare these against old")
    parser.add_argument("--jobs", type=int, default=1, help="--compare this many jobs at a time")
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
        compare_preview(args.iterations, args.seeds, args.variants, args.jobs, args.threads)


if __name__ == "__main__":
    main()

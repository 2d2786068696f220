"""Distillation figures on this machine: field representations, samples per ray, and the
"preview" preset end to end against the ellipsoid oracle (PSNR on held-out views).

    .venv/bin/python benchmarks/bench_distill.py [--preset preview] [--oracle head|ellipsoid]
                                                 [--threads N] [--skip-fit]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.nn import functional as F

from joker.distill import Box, RadianceField, distill, preset
from joker.distill.field import TriPlane
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


class HashGrid(nn.Module):
    """The published encoding (multi-resolution hash grid) in pure torch: 16 levels x 2
    features, 2^19 entries, base resolution 16, scale 1.447."""

    PRIMES = (1, 2654435761, 805459861)

    def __init__(self, levels=16, features=2, log2_table=19, base=16, scale=1.447):
        super().__init__()
        self.resolutions = [int(base * scale ** level) for level in range(levels)]
        self.table_size = 2 ** log2_table
        self.tables = nn.Parameter(torch.empty(levels, self.table_size, features).uniform_(-1e-4, 1e-4))
        self.corners = torch.tensor([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])

    def forward(self, points):
        unit = (points + 1) * 0.5
        features = []
        for level, resolution in enumerate(self.resolutions):
            scaled = unit * resolution
            base = scaled.floor().long()
            frac = scaled - base
            corners = base[:, None, :] + self.corners  # N x 8 x 3
            index = (corners[..., 0] * self.PRIMES[0] ^ corners[..., 1] * self.PRIMES[1]
                     ^ corners[..., 2] * self.PRIMES[2]) % self.table_size
            weights = torch.where(self.corners.bool(), frac[:, None, :], 1 - frac[:, None, :]).prod(-1)
            features.append((self.tables[level][index] * weights[..., None]).sum(1))
        return torch.cat(features, -1)


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
                  "hash grid 16 x 2, 2^19 (published)": HashGrid()}
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
    renders = render_images(field, CameraSet(cameras), range(count), width, samples, occupancy)
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


def fit(name: str, shape: str) -> None:
    chosen = preset(name)
    levels = NoiseLevels(100, 1000)
    if shape == "head":
        oracle, rig, box = demo_head_oracle(levels)
    else:
        oracle, rig, box = EllipsoidOracle(levels=levels), ViewRig(), Box()
    views = oracle.views(chosen.views.cameras(rig))
    condition = Condition(torch.zeros(1, 3, 8, 8))
    print(f"\n== preset {name!r} on the {shape} oracle: {len(views)} views at {chosen.views.size} px, "
          f"{chosen.schedule.iterations} iterations, {chosen.samples_per_ray} samples/ray ==")
    cpu_start = time.process_time()
    result = distill(oracle, views, condition, chosen, seed=0, box=box)
    cpu = time.process_time() - cpu_start
    width = chosen.views.size
    fidelity, seconds = held_out_fidelity(result.field, result.occupancy, oracle, rig, width,
                                          chosen.samples_per_ray)
    print(f"wall {result.seconds:.1f} s, process CPU {cpu:.1f} s, prior evaluations "
          f"{result.prior_evaluations}, NeRF steps {result.nerf_steps}, final loss {result.final_loss:.4f}")
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="preview")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--oracle", choices=("head", "ellipsoid"), default="head",
                        help="fit the demo head mesh or the analytic ellipsoid")
    parser.add_argument("--skip-fit", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    prior_costs()
    compare_encodings()
    if not args.skip_fit:
        fit(args.preset, args.oracle)


if __name__ == "__main__":
    main()

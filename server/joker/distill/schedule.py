"""The progressive schedule as data, and the named presets.

Stage 1 refreshes every view's target at decreasing noise (increasing DDIM level index,
level 0 being the noisiest) with one prior step, every `refresh_interval` iterations. At
level round(stage_fraction * levels) stage 2 makes the targets by a k-step DDIM descent from
that level, and the field is fitted to them until `iterations`. "published" is design.md §3
item by item (no rig supervision; its hash grid is tcnn's restated in torch); "preview",
"standard" and "high" are ours (tri-plane fields, fast on a CPU), with weak
geometric supervision from the rig (rig_views.py), measured by benchmarks/bench_generate.py.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from joker_core.cameras import Camera, ViewRig
from joker_core.errors import JokerError

from ..prior.base import NoiseLevels
from .field import SURFACE_DENSITY, FieldConfig, HashGridConfig
from .losses import LossWeights
from .render import BOX_DIAGONAL
from .rig_views import RigSupervision


@dataclass(frozen=True)
class Refresh:
    """One target refresh: at `iteration`, all views, from `level`, `steps` prior steps."""

    iteration: int
    stage: int
    level: int
    steps: int


@dataclass(frozen=True)
class Schedule:
    iterations: int = 20_000
    refresh_interval: int = 130
    stage_fraction: float = 0.6
    level_stride: int = 1
    k_steps: int = 40
    first_level: int = 0  # stage 1 starts here; > 0 when a warm-started field needs less noise
    # (from iteration, render width): the render resolution grows as the field sharpens.
    resolutions: tuple[tuple[int, int], ...] = ((0, 64), (200, 128), (3000, 256), (4500, 384), (7000, 512))
    patches: int = 64
    patch_size: int = 64
    shared_patch: bool = False  # distinct views sharing one patch location per step (published)

    def __post_init__(self):
        checks = [
            (self.refresh_interval >= 1, "refresh interval must be >= 1 iteration"),
            (0.0 < self.stage_fraction < 1.0, "stage fraction must lie strictly between 0 and 1"),
            (self.level_stride >= 1, "level stride must be >= 1"),
            (self.first_level >= 0, "first level must be >= 0"),
            (self.k_steps >= 1, "stage 2 needs k >= 1 DDIM steps"),
            (self.patches >= 1 and self.patch_size >= 1, "patch count and size must be >= 1"),
            (bool(self.resolutions) and self.resolutions[0][0] == 0,
             "the resolution schedule must start at iteration 0"),
            (all(a[0] < b[0] for a, b in zip(self.resolutions, self.resolutions[1:])),
             "resolution schedule iterations must increase"),
            (all(width >= 1 for _, width in self.resolutions), "render widths must be >= 1"),
        ]
        for ok, problem in checks:
            if not ok:
                raise JokerError(f"invalid distillation schedule: {problem}",
                                 "fix that field of the schedule or use a named preset")

    def switch_level(self, levels: NoiseLevels) -> int:
        return min(levels.count - 1, max(1, round(self.stage_fraction * levels.count)))

    def refreshes(self, levels: NoiseLevels) -> list[Refresh]:
        """Every refresh of a run, in order: stage 1 at decreasing noise, then stage 2."""
        switch = self.switch_level(levels)
        stage1 = [Refresh(i * self.refresh_interval, 1, level, 1)
                  for i, level in enumerate(range(min(self.first_level, switch - 1), switch, self.level_stride))]
        stage2 = Refresh(len(stage1) * self.refresh_interval, 2, switch,
                         len(levels.descent(switch, self.k_steps)))
        if stage2.iteration >= self.iterations:
            raise JokerError(f"stage 2 would start at iteration {stage2.iteration}, after the last "
                             f"({self.iterations})",
                             "raise iterations, or lower the refresh interval or the number of levels")
        return stage1 + [stage2]

    def prior_evaluations(self, levels: NoiseLevels, views: int) -> int:
        """Prior evaluations of a whole run (a CFG pair counts once)."""
        return views * sum(refresh.steps for refresh in self.refreshes(levels))

    def width_at(self, iteration: int) -> int:
        return [width for start, width in self.resolutions if start <= iteration][-1]


@dataclass(frozen=True)
class ViewGrid:
    """The training views: a grid over azimuth and elevation (degrees), `size` px targets."""

    azimuths: int = 20
    elevations: int = 20
    azimuth_range: float = 45.0
    elevation_range: float = 20.0
    size: int = 512

    def cameras(self, rig: ViewRig = ViewRig()) -> list[Camera]:
        sized = ViewRig(rig.center, rig.distance, rig.fov_deg, self.size)
        return sized.grid(self.azimuths, self.elevations, self.azimuth_range, self.elevation_range)


@dataclass(frozen=True)
class Preset:

    name: str
    schedule: Schedule
    views: ViewGrid
    field: FieldConfig = FieldConfig()
    samples_per_ray: int = 48
    losses: LossWeights = LossWeights()
    lr_grid: float = 1e-2
    lr_network: float = 1e-3
    lr_end: float = 1.0  # the rates fall along a half cosine to this share of themselves (1: constant)
    guidance_scale: float | None = None  # overrides the condition's CFG during distillation
    occupancy_grid: bool = True
    occupancy_threshold: float = 0.1  # density (per box half-size) below which a cell is empty
    occupancy_dilation: bool = True   # occupied cells' neighbours count as occupied (ours)
    # Samples at a fixed step of BOX_DIAGONAL / samples_per_ray, as nerfacc marches (and
    # nerfacc's own estimator on CUDA); else samples_per_ray strata over each ray's chord.
    march: bool = False
    weight_decay: float = 0.0  # AdamW's
    rig: RigSupervision = RigSupervision()  # weak geometric supervision (off: rays 0)
    surface_density: float = SURFACE_DENSITY  # iso level of the mesh

    def occupancy_alpha(self) -> float:
        """The occupancy threshold as opacity over one marching step (nerfacc's occ_thre)."""
        return 1.0 - math.exp(-self.occupancy_threshold * BOX_DIAGONAL / self.samples_per_ray)

    def rate_share(self, iteration: int) -> float:
        """The learning rates' share at `iteration`: a half cosine from 1 down to `lr_end`.
        A field that ends on small steps stops moving where its targets did not (sequences)."""
        progress = iteration / self.schedule.iterations
        return self.lr_end + (1 - self.lr_end) * 0.5 * (1 + math.cos(math.pi * progress))


# Iso level for fields with rig supervision, measured on preview (bench_generate.py --iso;
# face Chamfer over all / seen face vertices, % of head height). Depth alone: at 8 the mesh
# lies a median 2.3 mm outside the rig, 1.90 / 1.38; at 16: 1.67 / 1.21; at 20: 1.54 / 1.15;
# at 30 the half-dense inside of the head opens up behind the mouth: 2.03 / 1.59. With the
# volume losses (interior and free, rig_space.py) the inside is solid; seed 1: at 20: 1.52 /
# 1.07; at 25: 1.44 / 1.02; at 30: 1.39 / 1.00; at 35: 1.38 / 1.03 (seed 0 at 30: 1.40 / 1.03).
RIG_SURFACE_DENSITY = 30.0
# Preview's depth weight, measured the same way (held-out PSNR dB / Chamfer seen, all % /
# mouth opening of 8.7 cm): 0.3: 29.5 / 1.52, 1.84 / 3.6 cm; 0.5: 28.9 / 1.42, 1.87 / 3.6;
# 0.7: 28.5 / 1.19, 1.59 / 7.2; 1.0: 27.7 / ~1.2, ~1.6 / 7.7. Standard and high inherit it.
# The volume losses' weights (Chamfer all / seen at iso 30, seed 0, mouth opening; measured
# before free cells left out silhouette pixels): none:
# 2.03 / 1.59, 7.4 cm; interior 0.3 alone holds the mouth shut: 1.80 / 1.35, 3.9 cm; free 0.3
# alone: 1.61 / 1.28, 8.3 cm; interior 0.3 and free 0.1: 1.41 / 1.05, 7.3 cm; both 0.3: 1.37 /
# 1.01, 8.1 cm. Held-out PSNR with both, seeds 0 / 1: 28.3 / 28.5 dB (without: 28.5 / 28.2).
RIG_LOSSES = LossWeights(l1=1.0, ssim=0.2, sparsity=1e-4, mask=0.3, depth=0.7, interior=0.3, free=0.3)

PRESETS: dict[str, Preset] = {
    # design.md §3 item by item: tcnn's hash grid (in plain torch), blob 10 * (1 - |x| / 0.125)
    # in a box of radius 0.25: 0.5 box units;
    # render step 1.732 * 2 * 0.25 / 200 world = BOX_DIAGONAL / 200 box units; nerfacc's grid
    # 32^3 with alpha threshold 0.01 at that step; AdamW with torch's default weight decay.
    "published": Preset(
        "published", Schedule(shared_patch=True), ViewGrid(),
        field=FieldConfig(blob_radius=0.5, hash_grid=HashGridConfig()),
        samples_per_ray=200, losses=LossWeights(l1=1.0, lpips=1.0, sparsity=1e-6),
        guidance_scale=19.0, occupancy_threshold=-math.log(1 - 0.01) * 200 / BOX_DIAGONAL,
        occupancy_dilation=False, march=True, weight_decay=0.01),
    # Chosen by benchmarks/bench_distill.py (docs/architecture.md, "Preview, measured"): 600
    # NeRF steps instead of 900 (the stage-2 targets are fitted for 300 steps, not 600), and
    # empty space cut at density 0.5 without dilation, which composites fewer samples per ray.
    # Without more, 600 steps lost 0.024 points of seen-face Chamfer (three seeds), and every
    # schedule lever at >= 2x lost more; the field now starts from the rig's shape (100 steps
    # of density pre-fit, field queries only, ramp over 12 mm): over three seeds x2.32 less
    # CPU than the 900-step preview, Chamfer all -0.034, seen -0.006 points, PSNR -0.05 dB,
    # each within its seed spread (same section, "Density pre-fit to the rig").
    "preview": Preset(
        "preview",
        Schedule(iterations=600, refresh_interval=50, level_stride=10, k_steps=4,
                 resolutions=((0, 64), (150, 128)), patches=4, patch_size=32),
        ViewGrid(5, 3, size=128), samples_per_ray=32,
        losses=RIG_LOSSES, lr_network=1e-2, occupancy_threshold=0.5, occupancy_dilation=False,
        rig=RigSupervision(rays=1024, prefit_steps=100, prefit_band=0.012), surface_density=RIG_SURFACE_DENSITY),
    "standard": Preset(
        "standard",
        Schedule(iterations=3000, refresh_interval=150, level_stride=5, k_steps=10,
                 resolutions=((0, 64), (300, 128), (1200, 256)), patches=8, patch_size=48),
        ViewGrid(7, 5, size=256), field=FieldConfig(resolutions=(32, 128, 256)), samples_per_ray=64,
        losses=RIG_LOSSES, lr_network=1e-2,
        rig=RigSupervision(rays=2048, size=96), surface_density=RIG_SURFACE_DENSITY),
    "high": Preset(
        "high",
        Schedule(iterations=8000, refresh_interval=200, level_stride=2, k_steps=20,
                 resolutions=((0, 64), (400, 128), (2000, 256), (4000, 512)), patches=16, patch_size=64),
        ViewGrid(10, 7, size=512), field=FieldConfig(resolutions=(64, 256, 512), channels=12),
        samples_per_ray=96, losses=dataclasses.replace(RIG_LOSSES, lpips=0.5),
        lr_network=1e-2, rig=RigSupervision(rays=4096, elevations=(-50.0, -20.0, 10.0, 40.0), size=128),
        surface_density=RIG_SURFACE_DENSITY),
}


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise JokerError(f"unknown quality preset {name!r}",
                         f"use one of {', '.join(sorted(PRESETS))}") from None

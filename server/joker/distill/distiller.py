"""The progressive two-stage distillation loop: prior targets for every view, a radiance
field fitted to them, targets refreshed at decreasing noise as the field improves.

It talks to the prior only through joker.prior.base, reports progress through a callback,
writes a preview strip at every refresh, raises JobCancelled within a second of `cancel()`
returning True, and is deterministic under its seed.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch.nn import functional as F

from joker_core.errors import JobCancelled, JokerError

from ..prior.base import Condition, Prior, Views
from . import losses
from .field import Box, RadianceField
from .lpips import LPIPS_FIX, load_lpips
from .occupancy import OccupancyGrid, nerfacc_grid
from .preview import write_preview
from .rays import CameraSet
from .render import render_images, render_rays
from .rig_space import near_the_head, prefit_density, rig_cells, sample_cells
from .rig_views import RigGeometry
from .schedule import Preset, Refresh
from .warm_start import WarmStart

OCCUPANCY_WARMUP = 32     # iterations before empty space may be skipped
OCCUPANCY_UPDATE = 16     # iterations between occupancy-grid updates
OCCUPANCY_RESOLUTION = 32  # cells per side (published: nerfacc's grid, 32^3)
PRIOR_CALL_STEPS = 8      # view-steps per prior call, so a cancel is seen between calls
REPORT_SECONDS = 0.25     # at most this often a progress report between refreshes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Progress:
    stage: int
    level: int
    iteration: int
    iterations: int
    prior_evaluations: int
    nerf_steps: int
    progress: float          # 0..1, never decreasing
    eta_seconds: float | None
    loss: float | None


@dataclass
class Distillation:
    """The result: the field (density/colour callables for meshing), and what it cost."""

    field: RadianceField
    occupancy: OccupancyGrid | None  # or occupancy.NerfaccGrid: whatever renders the field
    targets: torch.Tensor  # the last refresh's, N x 3 x H x W (a warm start can reuse them)
    prior_evaluations: int
    nerf_steps: int
    seconds: float
    refreshes: list[Refresh]
    previews: list[Path]
    final_loss: float
    losses_used: tuple[str, ...]
    lpips: str = "off"             # "used", "off" (weight 0) or "missing" (weighted, no weights given)
    samples_per_ray: float = 0.0   # composited samples per training ray, mean over the run


def distill(prior: Prior, views: Views, condition: Condition, preset: Preset, *,
            seed: int = 0, device: str | torch.device = "cpu", box: Box = Box(),
            preview_dir: str | Path | None = None,
            on_progress: Callable[[Progress], None] | None = None,
            cancel: Callable[[], bool] | None = None,
            warm_start: WarmStart | None = None,
            rig: RigGeometry | None = None,
            lpips_weights: str | Path | None = None, lpips_required: bool = False) -> Distillation:
    """Distil `prior`'s idea of the head seen from `views` into a radiance field; `rig`
    adds depth targets to the training rays and `preset.rig.rays` orbit rays of weak
    geometric supervision to every step; with `preset.rig.prefit_steps`, a cold field
    starts from the rig's shape (rig_space.prefit_density).

    `warm_start` (sequences, warm_start.py) begins from a copy of a previous run's field;
    its targets, if any, stand in for the first refresh's, and its anchor's images replace
    every target, given or refreshed, where the anchor is weighted.

    LPIPS is explicit: a preset that weights it uses the file at `lpips_weights`; without
    one it trains without LPIPS, says so in the log and in `Distillation.lpips` ("missing"),
    or, with `lpips_required`, refuses to start."""
    run = _Run(prior, views, condition, preset, seed, torch.device(device), box,
               Path(preview_dir) if preview_dir else None, on_progress, cancel, rig,
               _lpips_loss(preset, lpips_weights, lpips_required))
    if warm_start is not None:
        run.start_from(warm_start)
    return run.run()


class _Run:
    """One distillation: the field, its optimiser, the current targets and the bookkeeping."""

    def __init__(self, prior: Prior, views: Views, condition: Condition, preset: Preset, seed: int,
                 device: torch.device, box: Box, preview_dir: Path | None,
                 on_progress: Callable[[Progress], None] | None, cancel: Callable[[], bool] | None,
                 rig: RigGeometry | None, lpips):
        if device.type == "cuda" and not torch.cuda.is_available():
            raise JokerError("CUDA was asked for but no CUDA device is available",
                             "run on the CPU (device 'cpu') or on a machine with an NVIDIA GPU")
        self.prior, self.views, self.preset, self.device = prior, views, preset, device
        self.schedule = preset.schedule
        self.condition = (dataclasses.replace(condition, guidance_scale=preset.guidance_scale)
                          if preset.guidance_scale is not None else condition)
        self.preview_dir, self.on_progress = preview_dir, on_progress
        self.cancel = cancel or (lambda: False)
        self.generator = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.field = RadianceField(box, preset.field).to(device)
        self.optimizer = torch.optim.AdamW(
            [{"params": self.field.grid_parameters(), "lr": preset.lr_grid},
             {"params": self.field.network_parameters(), "lr": preset.lr_network}],
            betas=(0.9, 0.99), eps=1e-15, weight_decay=preset.weight_decay)
        self.rates = [preset.lr_grid, preset.lr_network]
        self.occupancy = self._occupancy()
        self.lpips = lpips.to(device) if lpips is not None else None
        self.cameras = CameraSet(views.cameras, device)
        self.masks = views.foreground().to(device)
        self.rig = rig.to(device) if rig is not None and preset.rig.rays else None
        self.rig_cameras = CameraSet(rig.orbit.cameras, device) if self.rig is not None else None
        self.space = self._space(box)
        self.refreshes = self.schedule.refreshes(prior.levels)
        self.targets: torch.Tensor | None = None
        self._sized: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self._sized_depths: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.previews: list[Path] = []
        self.evaluations_at_start = prior.evaluations.total
        self.nerf_steps = 0
        self.composited = [0, 0]  # samples, rays
        self.loss: float | None = None
        self.current = self.refreshes[0]
        self.started = time.monotonic()
        self.last_report = 0.0
        self.progress = 0.0
        self.targets_given = False
        self.anchor = None
        self.warm_started = False
        self.occupancy_warmup = OCCUPANCY_WARMUP

    def _occupancy(self):
        """nerfacc's estimator where the preset marches on CUDA and it builds, else ours."""
        preset = self.preset
        if not preset.occupancy_grid:
            return None
        if preset.march:
            estimator = nerfacc_grid(self.device, OCCUPANCY_RESOLUTION, preset.occupancy_alpha(), preset.samples_per_ray)
            if estimator is not None:
                return estimator
        return OccupancyGrid(OCCUPANCY_RESOLUTION, preset.occupancy_threshold, device=self.device, march=preset.march,
                             dilate=preset.occupancy_dilation)

    def _space(self, box: Box) -> dict[str, torch.Tensor]:
        """Cell indices (rig_space.py) for the volume losses the preset weights: interior, free."""
        weights, settings = self.preset.losses, self.preset.rig
        if self.rig is None or not settings.space_points or not (weights.interior or weights.free):
            return {}
        interior, free = rig_cells([self.rig.training, self.rig.orbit], box, settings.space_margin)
        cells = {"interior": interior, "free": near_the_head(free)}
        return {name: marked.nonzero() for name, marked in cells.items()
                if getattr(weights, name) and marked.any()}

    def start_from(self, warm: WarmStart) -> None:
        if warm.field.config != self.field.config or warm.field.box != self.field.box:
            raise JokerError("the warm-start field has another size or volume than this run's",
                             "warm-start only from a field distilled with the same preset and box")
        self.field.load_state_dict(warm.field.state_dict())  # a copy: the previous result stays as it was
        self.warm_started = True
        self.anchor = warm.anchor
        if warm.targets is not None:
            if warm.targets.shape[0] != len(self.views) or warm.targets.shape[-2:] != self.views.normal_maps.shape[-2:]:
                raise JokerError("the warm-start targets do not match this run's views",
                                 "reuse targets only between runs with the same cameras")
            self.targets = self._anchored(warm.targets.to(self.device), range(len(self.views)))
            self.targets_given = True

    def run(self) -> Distillation:
        if self.rig is not None and self.preset.rig.prefit_steps and not self.warm_started:
            self._prefit()
        due = {refresh.iteration: refresh for refresh in self.refreshes}
        if self.targets_given:
            self.current = due.pop(0)  # the given targets stand in for the first refresh
        iterations = self.schedule.iterations
        for iteration in range(iterations):
            self._check_cancel()
            if iteration in due:
                self._refresh(due[iteration], iteration)
            self._step(iteration)
            self._report(iteration + 1, force=iteration + 1 == iterations)
        return Distillation(self.field, self.occupancy, self.targets, self._evaluations(), self.nerf_steps,
                            time.monotonic() - self.started, self.refreshes, self.previews,
                            self.loss if self.loss is not None else float("nan"), self._losses_used(),
                            self._lpips_status(), self.composited[0] / max(1, self.composited[1]))

    def _prefit(self) -> None:
        """The rig's shape as the field's start (rig_space.prefit_density); that field's
        empty space is known, so the occupancy grid may skip it from the first step."""
        self._check_cancel()
        loss = prefit_density(self.field, [self.rig.training, self.rig.orbit], self.preset.rig,
                              (self.preset.lr_grid, self.preset.lr_network), self.generator)
        log.info("density pre-fit to the rig: %d steps, loss %.4f", self.preset.rig.prefit_steps, loss)
        self.occupancy_warmup = 0

    def _lpips_status(self) -> str:
        return "off" if not self.preset.losses.lpips else "used" if self.lpips is not None else "missing"

    def _losses_used(self) -> tuple[str, ...]:
        weights = self.preset.losses
        used = [name for name in ("l1", "ssim", "sparsity", "mask") if getattr(weights, name)]
        if self.rig is not None and weights.depth:
            used.append("depth")
        used += list(self.space)
        return tuple(used + ["lpips"] * (self.lpips is not None))

    def _check_cancel(self) -> None:
        if self.cancel():
            raise JobCancelled("distillation cancelled")

    def _evaluations(self) -> int:
        return self.prior.evaluations.total - self.evaluations_at_start

    def _refresh(self, refresh: Refresh, iteration: int) -> None:
        """New targets for every view: render, noise to the level, ask the prior."""
        self.current = refresh
        width = self.schedule.width_at(iteration)
        height, full_width = self.views.normal_maps.shape[-2:]
        targets, renders = [], []
        chunk = max(1, PRIOR_CALL_STEPS // refresh.steps)
        for start in range(0, len(self.views), chunk):
            self._check_cancel()
            index = list(range(start, min(start + chunk, len(self.views))))
            renders.append(render_images(self.field, self.cameras, index, width,
                                         self.preset.samples_per_ray, self.occupancy))
            upsampled = F.interpolate(renders[-1], size=(height, full_width), mode="bilinear",
                                      align_corners=False)
            noisy = self.prior.noise(upsampled, refresh.level, self.generator)
            subset = self.views.subset(index)
            if refresh.stage == 1:
                clean = self.prior.predict_clean(noisy, subset, self.condition)
            else:
                clean = self.prior.denoise(noisy, subset, self.condition, self.schedule.k_steps)
            targets.append(self._anchored(clean.to(self.device).clamp(0, 1), index))
        self.targets = torch.cat(targets)
        self._sized.clear()
        if self.preview_dir is not None:
            self._write_preview(refresh, torch.cat(renders))
        self._report(iteration, force=True)

    def _anchored(self, targets: torch.Tensor, views) -> torch.Tensor:
        return targets if self.anchor is None else self.anchor.blend(targets, views)

    def _sized_targets(self, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Targets and rig masks at the render size (area-averaged), cached per refresh."""
        if width not in self._sized:
            size = self.cameras.size_at(width)
            self._sized[width] = (F.interpolate(self.targets, size=size, mode="area"),
                                  F.interpolate(self.masks, size=size, mode="area"))
        return self._sized[width]

    def _sized_rig(self, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The rig's masks and distances on the training views at the render size: the
        nearest pixel's, since averaging across the silhouette would invent depths."""
        if width not in self._sized_depths:
            size = self.cameras.size_at(width)
            training = self.rig.training
            self._sized_depths[width] = tuple(F.interpolate(image[:, None], size=size, mode="nearest-exact")[:, 0]
                                              for image in (training.masks, training.distances))
        return self._sized_depths[width]

    def _step(self, iteration: int) -> None:
        schedule, weights = self.schedule, self.preset.losses
        if self.occupancy is not None and iteration >= self.occupancy_warmup and iteration % OCCUPANCY_UPDATE == 0:
            self.occupancy.update(self.field, self.generator)
        self._anneal(iteration)
        width = schedule.width_at(iteration)
        targets, masks = self._sized_targets(width)
        pixels = self.cameras.patch_pixels(schedule.patches, schedule.patch_size, width, self.generator,
                                           schedule.shared_patch)
        warm = self.occupancy is not None and iteration >= self.occupancy_warmup
        out = self._render(pixels, width, warm)
        target = targets[pixels.view, :, pixels.row, pixels.col]
        loss = weights.l1 * (out.rgb - target).abs().mean()
        if weights.ssim or self.lpips is not None:
            rendered_patches = _as_patches(out.rgb, schedule.patches)
            target_patches = _as_patches(target, schedule.patches)
        if weights.ssim:
            loss = loss + weights.ssim * (1 - losses.ssim(rendered_patches, target_patches))
        if self.lpips is not None:
            loss = loss + weights.lpips * self.lpips(rendered_patches, target_patches)
        if weights.sparsity:
            loss = loss + weights.sparsity * losses.sparsity(out.opacity)
        if weights.mask:
            mask = masks[pixels.view, 0, pixels.row, pixels.col]
            loss = loss + weights.mask * losses.mask_loss(out.opacity, mask)
        if self.rig is not None and weights.depth:
            masks, distances = self._sized_rig(width)
            index = (pixels.view, pixels.row, pixels.col)
            loss = loss + weights.depth * losses.depth_loss(
                out.depth, distances[index] / self.field.box.half_size, masks[index])
        if self.rig is not None:
            loss = loss + self._rig_loss(warm)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.nerf_steps += 1
        self.loss = loss.item()

    def _render(self, pixels, width: int, warm: bool, cameras: CameraSet | None = None):
        rays = (cameras or self.cameras).rays(pixels, width)
        out = render_rays(self.field, rays, self.preset.samples_per_ray, self.generator,
                          self.occupancy if warm else None)
        self.composited[0] += out.samples
        self.composited[1] += len(pixels)
        return out

    def _anneal(self, iteration: int) -> None:
        share = self.preset.rate_share(iteration)
        for group, rate in zip(self.optimizer.param_groups, self.rates):
            group["lr"] = rate * share

    def _rig_loss(self, warm: bool) -> torch.Tensor:
        """Silhouette, depth and (where a prior rendered them) colour on random orbit rays;
        density inside the rig and in the free space around it."""
        weights, rig, width = self.preset.losses, self.rig.orbit, self.rig_cameras.width
        pixels = self.rig_cameras.patch_pixels(self.preset.rig.rays, 1, width, self.generator)
        out = self._render(pixels, width, warm, self.rig_cameras)
        mask = rig.masks[pixels.view, pixels.row, pixels.col]
        loss = weights.mask * losses.mask_loss(out.opacity, mask)
        if weights.depth:
            distance = rig.distances[pixels.view, pixels.row, pixels.col] / self.field.box.half_size
            loss = loss + weights.depth * losses.depth_loss(out.depth, distance, mask)
        if rig.colors is not None:
            colour = rig.colors[pixels.view, :, pixels.row, pixels.col]
            loss = loss + weights.l1 * (out.rgb - colour).abs().mean()
        settings = self.preset.rig
        for name, cells in self.space.items():
            points = sample_cells(cells, settings.space_points, self.generator)
            density = self.field.query_unit(points.to(self.device))[0]
            space_loss = losses.interior_loss if name == "interior" else losses.free_loss
            loss = loss + getattr(weights, name) * space_loss(density, settings.solid_density)
        return loss

    def _report(self, done_iterations: int, force: bool = False) -> None:
        now = time.monotonic()
        if self.on_progress is None or not (force or now - self.last_report >= REPORT_SECONDS):
            return
        self.last_report = now
        self.progress = max(self.progress, done_iterations / self.schedule.iterations)
        elapsed = now - self.started
        eta = elapsed * (1 - self.progress) / self.progress if self.progress > 0 else None
        self.on_progress(Progress(self.current.stage, self.current.level, done_iterations,
                                  self.schedule.iterations, self._evaluations(), self.nerf_steps,
                                  self.progress, eta, self.loss))

    def _write_preview(self, refresh: Refresh, renders: torch.Tensor) -> None:
        name = f"refresh_{len(self.previews):03d}_stage{refresh.stage}_level{refresh.level:03d}.png"
        self.previews.append(write_preview(self.preview_dir / name, renders, self.targets))


def _as_patches(rgb: torch.Tensor, count: int) -> torch.Tensor:
    """N x 3 pixel colours, patch by patch, row-major -> count x 3 x p x p."""
    side = round((rgb.shape[0] // count) ** 0.5)
    return rgb.reshape(count, side, side, 3).permute(0, 3, 1, 2)


def _lpips_loss(preset: Preset, weights: str | Path | None, required: bool):
    """The LPIPS network the preset asks for, or None, said out loud when it is missing."""
    if not preset.losses.lpips:
        return None
    if weights is not None:
        return load_lpips(weights)
    if required:
        raise JokerError(f"the {preset.name!r} preset weights LPIPS {preset.losses.lpips} but no LPIPS weights "
                         "were given", LPIPS_FIX)
    log.warning("the %r preset weights LPIPS %s but no LPIPS weights were given: training without LPIPS",
                preset.name, preset.losses.lpips)
    return None

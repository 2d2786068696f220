"""Occupancy grids over the head box, so rendering skips empty space: samples in cells whose
density has stayed low are neither sent to the field nor composited.

`OccupancyGrid` is nerfacc's idea in plain torch and runs everywhere. On CUDA,
`NerfaccGrid` hands the sampling to nerfacc's OccGridEstimator when its extension builds
(it compiles itself on first use; `nerfacc_grid` says so in the log and falls back to
ours, with one warning, when it cannot). nerfacc's CUDA code is only touched when
torch.cuda.is_available(): a machine with nvcc but a CPU-only torch would try, and fail, to
build it.
"""

from __future__ import annotations

import logging
import math
import warnings

import torch
from torch.nn import functional as F

from .field import RadianceField
from .render import BOX_DIAGONAL, Samples, ray_samples

log = logging.getLogger(__name__)


class OccupancyGrid:
    """`resolution`^3 cells over [-1, 1]^3 (box units) holding a decaying max of density;
    `march`: samples at a fixed step (nerfacc's), else strata over each ray's chord."""

    def __init__(self, resolution: int = 32, threshold: float = 0.1, decay: float = 0.9,
                 device: torch.device | str = "cpu", march: bool = False, dilate: bool = True):
        self.resolution, self.threshold, self.decay, self.march = resolution, threshold, decay, march
        self.dilate = dilate
        self.density = torch.full((resolution,) * 3, float("inf"), device=device)  # all occupied until updated
        self.mask = torch.ones((resolution,) * 3, dtype=torch.bool, device=device)
        axis = (torch.arange(resolution, device=device) + 0.5) / resolution * 2 - 1
        self._centres = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)

    @torch.no_grad()
    def update(self, field: RadianceField, generator: torch.Generator) -> None:
        """Evaluate the field at one random point per cell and fold it into the grid."""
        jitter = (torch.rand(self._centres.shape, generator=generator).to(self._centres.device) - 0.5)
        density = field.query_unit(self._centres + jitter * (2.0 / self.resolution))[0]
        fresh = density.reshape(self.density.shape)
        self.density = torch.maximum(torch.nan_to_num(self.density * self.decay, posinf=0.0), fresh)
        occupied = self.density > self.threshold
        # Dilated by one cell, the surface can grow into its empty neighbourhood.
        self.mask = F.max_pool3d(occupied.float()[None, None], 3, stride=1, padding=1)[0, 0].bool() \
            if self.dilate else occupied

    def occupied(self, unit_points: torch.Tensor) -> torch.Tensor:
        """Boolean mask of points (box units) whose cell is occupied."""
        size = self.resolution
        index = ((unit_points + 1) * (0.5 * size)).long().clamp(0, size - 1)
        return self.mask.reshape(-1)[(index[:, 0] * size + index[:, 1]) * size + index[:, 2]]

    def samples(self, origins: torch.Tensor, directions: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
                samples: int, generator: torch.Generator | None) -> Samples:
        """The candidate samples (render.ray_samples) that lie in occupied cells."""
        def occupied(t: torch.Tensor) -> torch.Tensor:
            points = origins[:, None, :] + t[..., None] * directions[:, None, :]
            return self.occupied(points.reshape(-1, 3)).reshape(t.shape)
        return ray_samples(near, far, samples, generator, self.march, keep=occupied)

    @property
    def occupied_fraction(self) -> float:
        return float(self.mask.float().mean())


class NerfaccGrid:
    """nerfacc's OccGridEstimator over the box (CUDA only): marching at BOX_DIAGONAL /
    samples, empty cells skipped by its kernels, updated from the field's opacity."""

    def __init__(self, estimator, alpha_threshold: float, samples: int):
        self.estimator, self.alpha_threshold = estimator, alpha_threshold
        self.step_size = BOX_DIAGONAL / samples
        self.updates = 0

    @torch.no_grad()
    def update(self, field: RadianceField, generator: torch.Generator | None = None) -> None:
        step = self.step_size
        self.estimator.update_every_n_steps(self.updates, lambda x: field.query_unit(x)[0][:, None] * step,
                                            occ_thre=self.alpha_threshold, n=1)
        self.updates += 1

    def occupied(self, unit_points: torch.Tensor) -> torch.Tensor:
        return self.estimator.binaries[0][_cell_index(unit_points, self.estimator.resolution)].reshape(-1)

    def samples(self, origins: torch.Tensor, directions: torch.Tensor, near: torch.Tensor, far: torch.Tensor,
                samples: int, generator: torch.Generator | None) -> Samples:
        ray, starts, ends = self.estimator.sampling(origins, directions, render_step_size=BOX_DIAGONAL / samples,
                                                    stratified=generator is not None)
        return Samples(ray.long(), (starts + ends) / 2, ends - starts, origins.shape[0])

    @property
    def occupied_fraction(self) -> float:
        return float(self.estimator.binaries.float().mean())


def _cell_index(unit_points: torch.Tensor, resolution: torch.Tensor) -> tuple[torch.Tensor, ...]:
    size = resolution.to(unit_points.device)
    index = ((unit_points + 1) * 0.5 * size).long().clamp(torch.zeros_like(size), size - 1)
    return index[:, 0], index[:, 1], index[:, 2]


_NERFACC_BUILD: dict[str, bool] = {}  # one build attempt (and at most one warning) per process


def nerfacc_grid(device: torch.device, resolution: int, alpha_threshold: float, samples: int):
    """nerfacc's estimator on a CUDA device whose extension builds, else None (our grid serves)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    if "ok" not in _NERFACC_BUILD:
        log.info("building nerfacc's CUDA extension (first use only; cached in torch's extension folder)")
        try:
            from nerfacc.cuda import _backend  # the JIT build happens on import
            problem = None if _backend._C is not None else "no CUDA toolkit (nvcc) found"
        except Exception as error:  # a failed compiler run raises anything from OSError to RuntimeError
            problem = (str(error).splitlines() or [type(error).__name__])[0][:200]
        _NERFACC_BUILD["ok"] = problem is None
        if problem:
            warnings.warn(f"nerfacc's CUDA extension could not be built ({problem}); "
                          "using the built-in occupancy grid", RuntimeWarning, stacklevel=2)
    if not _NERFACC_BUILD["ok"]:
        return None
    import nerfacc

    estimator = nerfacc.OccGridEstimator(roi_aabb=[-1.0, -1.0, -1.0, 1.0, 1.0, 1.0], resolution=resolution,
                                         levels=1).to(device)
    return NerfaccGrid(estimator, alpha_threshold, samples)


def density_threshold(alpha_threshold: float, samples: int) -> float:
    """The density whose alpha over one marching step (BOX_DIAGONAL / samples) is `alpha_threshold`."""
    return -math.log(1 - alpha_threshold) / (BOX_DIAGONAL / samples)

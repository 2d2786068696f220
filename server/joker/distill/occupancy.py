"""An occupancy grid over the head box, so rendering skips empty space: samples in cells
whose density has stayed low are never sent to the field. The idea of nerfacc's
OccupancyGrid, in plain torch so it runs the same on CPU and CUDA."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .field import RadianceField


class OccupancyGrid:
    """`resolution`^3 cells over [-1, 1]^3 (box units) holding a decaying max of density."""

    def __init__(self, resolution: int = 32, threshold: float = 0.1, decay: float = 0.9,
                 device: torch.device | str = "cpu"):
        self.resolution, self.threshold, self.decay = resolution, threshold, decay
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
        # Dilate by one cell, so the surface can grow into its empty neighbourhood.
        occupied = (self.density > self.threshold).float()[None, None]
        self.mask = F.max_pool3d(occupied, 3, stride=1, padding=1)[0, 0].bool()

    def occupied(self, unit_points: torch.Tensor) -> torch.Tensor:
        """Boolean mask of points (box units) whose cell is occupied."""
        index = ((unit_points + 1) * 0.5 * self.resolution).long().clamp(0, self.resolution - 1)
        return self.mask[index[:, 0], index[:, 1], index[:, 2]]

    @property
    def occupied_fraction(self) -> float:
        return float(self.mask.float().mean())

"""The radiance field: learned features in a bounded head volume, decoded by a tiny MLP
into density and colour, plus a learned environment background.

The features come from a tri-plane (three axis-aligned feature planes, bilinear lookups:
what runs fast on a CPU) or from the authors' multi-resolution hash grid (tiny-cuda-nn's
encoding restated in plain torch, so it needs no compiled extension);
benchmarks/bench_distill.py measures them side by side. Everything inside works in box
units: the head cube maps to [-1, 1]^3, so densities are per box half-size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from joker_core.errors import JokerError

from ..box import Box


# Density at the head's surface, for mesh extraction of a field fitted to images alone:
# measured on preview fits of the demo head, the density is ~35 at 0.9x the true surface
# radius, ~5 at 1.0x and 0 at 1.1x. Rig depth supervision sharpens the surface, so presets
# that use it set their own (Preset.surface_density).
SURFACE_DENSITY = 8.0


@dataclass(frozen=True)
class HashGridConfig:
    """tiny-cuda-nn's HashGrid encoding; the defaults are the authors' (design.md §3)."""

    levels: int = 16
    features: int = 2
    log2_table: int = 19
    base_resolution: int = 16
    per_level_scale: float = 1.447

    def __post_init__(self):
        if self.levels < 1 or self.features < 1 or not 1 <= self.log2_table <= 30 or self.base_resolution < 2 \
                or self.per_level_scale < 1.0:
            raise JokerError(f"hash grid {self} is unusable",
                             "use >= 1 level and feature, a table of 2^1..2^30, base resolution >= 2, scale >= 1")


@dataclass(frozen=True)
class FieldConfig:
    """Shape of the field. `resolutions` lists the tri-plane scales (features concatenate);
    `hash_grid`, when given, replaces the tri-plane by that hash grid."""

    resolutions: tuple[int, ...] = (32, 128)
    channels: int = 8
    hidden: int = 64
    blob_density: float = 10.0   # density added at the centre, falling to 0 at blob_radius
    blob_radius: float = 0.6     # in box units; published: 0.5 (0.125 in a box of radius 0.25)
    background_hidden: int = 32
    hash_grid: HashGridConfig | None = None

    def __post_init__(self):
        if not self.resolutions or min(self.resolutions) < 2:
            raise JokerError(f"tri-plane resolutions {self.resolutions} are unusable",
                             "give one or more plane resolutions >= 2")


_PLANE_AXES = [[0, 1], [0, 2], [1, 2]]  # the (x, y), (x, z) and (y, z) planes


class TriPlane(nn.Module):
    """Multi-scale tri-plane: features at (x,y), (x,z), (y,z), concatenated over scales."""

    def __init__(self, resolutions: tuple[int, ...], channels: int):
        super().__init__()
        self.planes = nn.ParameterList(
            nn.Parameter(torch.empty(3, channels, r, r).uniform_(-0.1, 0.1)) for r in resolutions)
        self.out_features = 3 * channels * len(resolutions)

    def forward(self, unit_points: torch.Tensor) -> torch.Tensor:
        coords = unit_points[:, _PLANE_AXES].permute(1, 0, 2)[:, None]  # 3 x 1 x N x 2
        features = [F.grid_sample(plane, coords, mode="bilinear", padding_mode="border",
                                  align_corners=True)[:, :, 0]  # 3 x C x N
                    for plane in self.planes]
        return torch.cat(features, 1).flatten(0, 1).T  # N x 3*C*scales


_CORNERS = torch.tensor([[i & 1, i >> 1 & 1, i >> 2 & 1] for i in range(8)])
_PRIMES = (1, 2654435761, 805459861)  # tiny-cuda-nn's spatial hash


class HashGrid(nn.Module):
    """Multi-resolution hash encoding as tiny-cuda-nn computes it (grid.h): level l has
    scale base * per_level_scale^l - 1 and resolution ceil(scale) + 1, points land at
    x * scale + 0.5, a level indexes its cells densely while they fit its table (of
    min(2^log2_table, resolution^3 rounded up to 8) entries) and by the XOR of coordinates
    times primes beyond; trilinear weights; entries start uniform in +-1e-4."""

    def __init__(self, config: HashGridConfig):
        super().__init__()
        table = 2 ** config.log2_table
        self.scales = [2.0 ** (level * math.log2(config.per_level_scale)) * config.base_resolution - 1.0
                       for level in range(config.levels)]
        self.resolutions = [math.ceil(scale) + 1 for scale in self.scales]
        self.sizes = [min(table, -(-resolution ** 3 // 8) * 8) for resolution in self.resolutions]
        self.dense = [resolution ** 3 <= size for resolution, size in zip(self.resolutions, self.sizes)]
        self.offsets = [0] + list(np.cumsum(self.sizes)[:-1].tolist())
        self.table = nn.Parameter(torch.empty(sum(self.sizes), config.features).uniform_(-1e-4, 1e-4))
        self.out_features = config.levels * config.features

    def index(self, level: int, corners: torch.Tensor) -> torch.Tensor:
        """Integer grid coordinates ... x 3 at `level` -> rows of the table."""
        if self.dense[level]:
            resolution = self.resolutions[level]
            local = corners[..., 0] + resolution * (corners[..., 1] + resolution * corners[..., 2])
        else:
            local = corners[..., 0] * _PRIMES[0] ^ corners[..., 1] * _PRIMES[1] ^ corners[..., 2] * _PRIMES[2]
        return self.offsets[level] + local % self.sizes[level]

    def forward(self, unit_points: torch.Tensor) -> torch.Tensor:
        unit = ((unit_points + 1) * 0.5).clamp(0, 1)
        corners = _CORNERS.to(unit.device)
        features = []
        for level, scale in enumerate(self.scales):
            position = unit * scale + 0.5
            cell = position.floor()
            fraction = position - cell
            weights = torch.where(corners.bool(), fraction[:, None], 1 - fraction[:, None]).prod(-1)  # N x 8
            rows = self.index(level, cell.long()[:, None] + corners)
            features.append((self.table[rows] * weights[..., None]).sum(1))
        return torch.cat(features, -1)


class EnvironmentBackground(nn.Module):
    """Background colour as a function of the viewing direction (a learned environment)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, hidden), nn.ReLU(), nn.Linear(hidden, 3))

    def forward(self, directions: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.mlp(directions))


class RadianceField(nn.Module):
    """Density and view-independent colour in a bounded head volume.

    `density(points)` and `color(points)` take world points N x 3 and are what mesh
    extraction uses; density is zero outside the box.
    """

    def __init__(self, box: Box = Box(), config: FieldConfig = FieldConfig()):
        super().__init__()
        self.box, self.config = box, config
        self.encoding = (HashGrid(config.hash_grid) if config.hash_grid is not None
                         else TriPlane(config.resolutions, config.channels))
        self.decoder = nn.Sequential(nn.Linear(self.encoding.out_features, config.hidden), nn.ReLU(),
                                     nn.Linear(config.hidden, 4))
        self.background = EnvironmentBackground(config.background_hidden)

    def grid_parameters(self) -> list[nn.Parameter]:
        return list(self.encoding.parameters())

    def network_parameters(self) -> list[nn.Parameter]:
        return list(self.decoder.parameters()) + list(self.background.parameters())

    def query_unit(self, unit_points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Points in box units -> (density N, colour N x 3)."""
        raw = self.decoder(self.encoding(unit_points))
        # The blob bias starts optimisation from a soft ball around the head centre.
        blob = self.config.blob_density * (1.0 - unit_points.norm(dim=-1) / self.config.blob_radius)
        density = F.softplus(raw[:, 0] + blob)
        inside = (unit_points.abs() <= 1.0).all(-1)
        return density * inside, torch.sigmoid(raw[:, 1:])

    @torch.no_grad()
    def density(self, points: torch.Tensor) -> torch.Tensor:
        """World points N x 3 -> density N (per box half-size; 0 outside the box)."""
        return self.query_unit(self.box.to_unit(self._as_tensor(points)))[0]

    @torch.no_grad()
    def color(self, points: torch.Tensor) -> torch.Tensor:
        """World points N x 3 -> RGB N x 3 in [0, 1]."""
        return self.query_unit(self.box.to_unit(self._as_tensor(points)))[1]

    def _as_tensor(self, points) -> torch.Tensor:
        reference = self.decoder[0].weight
        return torch.as_tensor(points, dtype=reference.dtype, device=reference.device)

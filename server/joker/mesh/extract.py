"""Density field -> sampled grid -> marching-cubes surface in world coordinates.

Grid convention: `resolution` cells per axis, so resolution + 1 samples per axis; sample
(i, j, k) sits at box.minimum + (i, j, k) * box.size / resolution, x along the first index.
"""

from __future__ import annotations

import functools
from typing import Callable

import mcubes
import numpy as np
import torch
from scipy import ndimage

from joker_core.errors import JokerError

from ..box import Box
from .fields import DensityField, evaluate

MIN_RESOLUTION, MAX_RESOLUTION = 8, 1024


def grid_to_world(box: Box, resolution: int, coordinates: np.ndarray) -> np.ndarray:
    """World positions (N x 3) of grid coordinates (N x 3; integer samples or in between)."""
    return box.minimum + coordinates * (box.size / resolution)


def _cells_touching(inside: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """Per cell of a sample grid, `reduce` (np.logical_or / np.logical_and) of its 8 corners."""
    corners = [inside[a:a + inside.shape[0] - 1, b:b + inside.shape[1] - 1, c:c + inside.shape[2] - 1]
               for a in (0, 1) for b in (0, 1) for c in (0, 1)]
    return reduce.reduce(np.stack(corners), axis=0)


def _points_of_cells(cells: np.ndarray) -> np.ndarray:
    """Sample mask (one larger per axis) of every corner of the marked cells."""
    padded = np.pad(cells, 1)
    shape = tuple(n + 1 for n in cells.shape)
    return np.logical_or.reduce([padded[a:a + shape[0], b:b + shape[1], c:c + shape[2]]
                                 for a in (0, 1) for b in (0, 1) for c in (0, 1)])


def check_grid(resolution: int, coarse_stride: int) -> None:
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise JokerError(f"grid resolution {resolution} is outside {MIN_RESOLUTION}..{MAX_RESOLUTION}",
                         "pick a resolution such as 128 (fast) or 256 (detailed)")
    power_of_two = coarse_stride >= 1 and coarse_stride & (coarse_stride - 1) == 0
    if not power_of_two or resolution % coarse_stride:
        raise JokerError(f"coarse stride {coarse_stride} is not a power of two dividing the grid resolution {resolution}",
                         "use a stride of 1, 2 or 4 with a resolution that is a multiple of it")


def _refine(grid: np.ndarray, iso_level: float, sample: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Grid at twice the sampling rate: exact near the surface, trilinear elsewhere.

    Cells whose corners straddle the iso level, and their neighbours, are sampled exactly
    (`sample(indices)` on the finer lattice); the trilinear fill elsewhere stays on one
    side of the iso level, so it cannot move the surface.
    """
    inside = grid > iso_level
    straddling = _cells_touching(inside, np.logical_or) & ~_cells_touching(inside, np.logical_and)
    band = ndimage.binary_dilation(straddling, structure=np.ones((3, 3, 3), bool))
    exact = _points_of_cells(band.repeat(2, 0).repeat(2, 1).repeat(2, 2))
    finer = torch.nn.functional.interpolate(torch.from_numpy(grid)[None, None], size=exact.shape,
                                            mode="trilinear", align_corners=True)[0, 0].numpy()
    finer[exact] = sample(np.argwhere(exact))
    return finer


def sample_density_grid(density: DensityField, box: Box, resolution: int, *, iso_level: float,
                        coarse_stride: int = 4, chunk_size: int = 1 << 18,
                        device: str | torch.device = "cpu") -> np.ndarray:
    """Sample the density on a (resolution + 1)^3 grid, exactly wherever the surface can be.

    The field is sampled every `coarse_stride` samples first, then the sampling rate is
    doubled near the surface until it is full (see `_refine`): a fraction of the cost of a
    dense grid, with the same surface unless a feature is thinner than a coarse cell.
    `coarse_stride=1` samples everything.
    """
    check_grid(resolution, coarse_stride)

    def sample(indices: np.ndarray, stride: int) -> np.ndarray:
        """Density at lattice indices of a grid that takes every `stride`-th sample."""
        points = grid_to_world(box, resolution, indices * stride).astype(np.float32)
        return evaluate(density, points, what="density", channels=1, chunk_size=chunk_size, device=device)

    counts = (resolution // coarse_stride + 1,) * 3
    lattice = np.stack(np.meshgrid(*map(np.arange, counts), indexing="ij"), axis=-1).reshape(-1, 3)
    grid = sample(lattice, coarse_stride).reshape(counts)
    stride = coarse_stride
    while stride > 1:
        stride //= 2
        grid = _refine(grid, iso_level, functools.partial(sample, stride=stride))
    return grid


def blur_grid(grid: np.ndarray, sigma: float) -> np.ndarray:
    """The density grid low-passed by a Gaussian of `sigma` cells (0: unchanged).

    The distilled density is noisy at the scale of a cell: its iso-surface carries a
    network of crevices and ridges a cell wide, which decimation folds over (edges bent
    by > 90 degrees: 1094 of 30k on the preview head, 248 after a 0.75-cell blur) and
    which shade as dark cracks. The blur fills them; the outline moves by far less than a
    cell (docs/mesh.md has the figures)."""
    return ndimage.gaussian_filter(grid, sigma, mode="nearest") if sigma > 0 else grid


def marching_cubes(grid: np.ndarray, iso_level: float, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Closed, outward-wound surface where the density crosses `iso_level` (inside: above).

    The grid is padded with empty space, so a surface cut by the box is closed by a cap on
    the box face instead of being left open.
    """
    inside = grid > iso_level
    if not inside.any():
        raise JokerError(f"the density field is empty: no density above the iso level {iso_level} in the box "
                         f"(max density {float(grid.max()):.3g}), so distillation produced no head",
                         "lower the iso level, check the bounding box, or re-run the distillation")
    if inside.all():
        raise JokerError(f"the density field fills the whole box: every sample is above the iso level {iso_level}",
                         "raise the iso level or enlarge the bounding box")
    empty = min(float(grid.min()), iso_level) - 1.0
    vertices, faces = mcubes.marching_cubes(np.pad(grid, 1, constant_values=empty), iso_level)
    resolution = grid.shape[0] - 1
    world = grid_to_world(box, resolution, vertices - 1.0)
    world = np.clip(world, box.minimum, box.maximum)
    return world, faces.astype(np.int64)

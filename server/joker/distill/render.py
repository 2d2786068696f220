"""Volume rendering of a RadianceField: samples along each ray through the head box, only
those in occupied space (occupancy.py), composited by nerfacc's volume-rendering functions,
the environment behind.

Samples travel packed (ray index, position, length), so empty space costs neither a field
query nor a compositing step. On CUDA nerfacc composites them with its own kernels; on the
CPU its extension cannot be built, so the one packed scan it needs (the exclusive sum of
optical depth along each ray) is done here in torch and nerfacc accumulates along rays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nerfacc
import torch

from .field import RadianceField
from .rays import CameraSet, Rays

BOX_DIAGONAL = 2 * math.sqrt(3)  # of [-1, 1]^3, in box units


@dataclass
class Rendered:
    rgb: torch.Tensor      # N x 3
    opacity: torch.Tensor  # N, accumulated alpha (1 = the ray ends in the head)
    depth: torch.Tensor    # N, expected distance in box units (0 where empty)
    samples: int = 0       # samples composited, all rays together


@dataclass
class Samples:
    """Packed samples: the samples of a ray are contiguous and in order along it."""

    ray: torch.Tensor     # S (long), the ray each sample belongs to
    t: torch.Tensor       # S, distance along the ray (box units) where the field is queried
    length: torch.Tensor  # S, the interval each sample stands for (box units)
    rays: int

    def __len__(self) -> int:
        return self.ray.shape[0]


def box_interval(origins: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances of rays (box units) through [-1, 1]^3; equal where they miss."""
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0, t1 = (-1.0 - origins) / safe, (1.0 - origins) / safe
    near = torch.minimum(t0, t1).amax(-1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, torch.maximum(far, near)


def ray_samples(near: torch.Tensor, far: torch.Tensor, samples: int, generator: torch.Generator | None,
                march: bool = False, keep=None) -> Samples:
    """Candidate samples between each ray's entry and exit: `samples` strata spread over the
    ray's chord, or (`march`) a fixed step of BOX_DIAGONAL / `samples`, as nerfacc marches,
    so short chords get fewer. With a generator each sample is jittered within its
    interval (training); without, it sits at the centre (evaluation). `keep(t)` (rays x
    samples distances -> bools) drops candidates before they are packed."""
    count, device = near.shape[0], near.device
    if generator is None:
        offsets = torch.full((count, samples), 0.5, device=device)
    else:
        offsets = torch.rand((count, samples), generator=generator).to(device)
    chord = far - near
    step = torch.full_like(near, BOX_DIAGONAL / samples) if march else chord / samples
    starts = torch.arange(samples, device=device) * step[:, None]
    t = near[:, None] + starts + offsets * step[:, None]
    inside = starts < chord[:, None] if march else (chord > 0)[:, None].expand(count, samples)
    if keep is not None:
        inside = inside & keep(t)
    ray, index = inside.nonzero(as_tuple=True)
    return Samples(ray, t[ray, index], step[ray], count)


def composite_weights(samples: Samples, density: torch.Tensor) -> torch.Tensor:
    """Each sample's weight alpha_i * T_i, T_i = exp(-sum_{j<i} sigma_j * delta_j) along its ray."""
    if density.is_cuda:
        t_ends = samples.t + samples.length
        return nerfacc.render_weight_from_density(samples.t, t_ends, density, ray_indices=samples.ray,
                                                  n_rays=samples.rays)[0]
    depth = density * samples.length
    alpha = 1.0 - torch.exp(-depth)
    return alpha * torch.exp(-exclusive_sum_along_rays(depth, samples.ray, samples.rays))


def exclusive_sum_along_rays(values: torch.Tensor, ray: torch.Tensor, rays: int) -> torch.Tensor:
    """nerfacc.exclusive_sum of packed values without its CUDA extension: one running sum
    over all samples, less its value at each ray's first sample (float64, so rays late in
    the sum lose nothing)."""
    exclusive = torch.cumsum(values.double(), 0) - values.double()
    counts = torch.bincount(ray, minlength=rays)
    first = (torch.cumsum(counts, 0) - counts)[ray]
    return (exclusive - exclusive[first]).to(values.dtype)


def render_rays(field: RadianceField, rays: Rays, samples: int,
                generator: torch.Generator | None = None, occupancy=None) -> Rendered:
    """Composite up to `samples` points per ray (occupancy.py's `samples` decides where,
    skipping empty cells; without one, strata over the whole chord)."""
    origins = field.box.to_unit(rays.origins)
    near, far = box_interval(origins, rays.directions)
    if occupancy is None:
        packed = ray_samples(near, far, samples, generator)
    else:
        packed = occupancy.samples(origins, rays.directions, near, far, samples, generator)
    points = origins[packed.ray] + packed.t[:, None] * rays.directions[packed.ray]
    density, color = field.query_unit(points)
    weights = composite_weights(packed, density)
    count = origins.shape[0]
    opacity = nerfacc.accumulate_along_rays(weights, None, packed.ray, count)[:, 0]
    rgb = nerfacc.accumulate_along_rays(weights, color, packed.ray, count)
    depth = nerfacc.accumulate_along_rays(weights, packed.t[:, None], packed.ray, count)[:, 0]
    rgb = rgb + (1.0 - opacity[:, None]) * field.background(rays.directions)
    return Rendered(rgb, opacity, depth, len(packed))


@torch.no_grad()
def render_images(field: RadianceField, cameras: CameraSet, views: range | list[int], width: int,
                  samples: int, occupancy=None, chunk: int = 1 << 15) -> torch.Tensor:
    """Whole images of `views`, V x 3 x H x W, rendered `width` pixels wide."""
    height, width = cameras.size_at(width)
    images = []
    for view in views:
        pixels = cameras.image_pixels(view, width)
        rgb = torch.cat([render_rays(field, cameras.rays(pixels.slice(start, start + chunk), width),
                                     samples, occupancy=occupancy).rgb
                         for start in range(0, len(pixels), chunk)])
        images.append(rgb.T.reshape(3, height, width))
    return torch.stack(images)

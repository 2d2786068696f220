"""Volume rendering of a RadianceField: stratified samples between the ray's entry into and
exit from the head box, alpha compositing, the environment behind. Pure torch, so the same
code runs on CPU and CUDA."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .field import RadianceField
from .occupancy import OccupancyGrid
from .rays import CameraSet, Rays


@dataclass
class Rendered:
    rgb: torch.Tensor      # N x 3
    opacity: torch.Tensor  # N, accumulated alpha (1 = the ray ends in the head)
    depth: torch.Tensor    # N, expected distance in box units (0 where empty)


def box_interval(origins: torch.Tensor, directions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Entry and exit distances of rays (box units) through [-1, 1]^3; equal where they miss."""
    safe = torch.where(directions.abs() < 1e-9, torch.full_like(directions, 1e-9), directions)
    t0, t1 = (-1.0 - origins) / safe, (1.0 - origins) / safe
    near = torch.minimum(t0, t1).amax(-1).clamp_min(0.0)
    far = torch.maximum(t0, t1).amin(-1)
    return near, torch.maximum(far, near)


def render_rays(field: RadianceField, rays: Rays, samples: int,
                generator: torch.Generator | None = None,
                occupancy: OccupancyGrid | None = None) -> Rendered:
    """Composite `samples` points per ray; with a generator the points are jittered within
    their strata (training), without it they sit at the strata centres (evaluation).
    With an occupancy grid, points in empty cells count as empty without querying the field."""
    origins = field.box.to_unit(rays.origins)
    near, far = box_interval(origins, rays.directions)
    count = origins.shape[0]
    if generator is None:
        offsets = torch.full((count, samples), 0.5, device=origins.device)
    else:
        offsets = torch.rand((count, samples), generator=generator).to(origins.device)
    step = (far - near) / samples
    t = near[:, None] + (torch.arange(samples, device=origins.device) + offsets) * step[:, None]
    points = origins[:, None, :] + t[..., None] * rays.directions[:, None, :]
    density, color = _query(field, points.reshape(-1, 3), occupancy)
    alpha = 1.0 - torch.exp(-density.reshape(count, samples) * step[:, None])
    transmittance = torch.cumprod(
        torch.cat([alpha.new_ones(count, 1), 1.0 - alpha[:, :-1] + 1e-10], 1), 1)
    weights = alpha * transmittance
    opacity = weights.sum(-1)
    rgb = (weights[..., None] * color.reshape(count, samples, 3)).sum(1)
    rgb = rgb + (1.0 - opacity[:, None]) * field.background(rays.directions)
    return Rendered(rgb, opacity, (weights * t).sum(-1))


def _query(field: RadianceField, points: torch.Tensor,
           occupancy: OccupancyGrid | None) -> tuple[torch.Tensor, torch.Tensor]:
    if occupancy is None:
        return field.query_unit(points)
    keep = occupancy.occupied(points).nonzero()[:, 0]
    kept_density, kept_color = field.query_unit(points[keep])
    density = points.new_zeros(points.shape[0]).index_put((keep,), kept_density)
    color = points.new_zeros(points.shape).index_put((keep,), kept_color)
    return density, color


@torch.no_grad()
def render_images(field: RadianceField, cameras: CameraSet, views: range | list[int], width: int,
                  samples: int, occupancy: OccupancyGrid | None = None,
                  chunk: int = 1 << 15) -> torch.Tensor:
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


"""The head box as the rig views see it, cell by cell: interior (behind the rig's surface
in every view, by a margin) and free (some view sees through it). Losses on the field's
density at points in these cells (distiller.py) shape the volume directly where rays only
shape it through their composite: the inside of the head, which no picture shows and which
the field may otherwise leave at any density opaque enough, and free space such as the
open mouth, which a ray's expected depth lets the field fill with fog. A margin keeps both
off the surface layer, which the images and depths shape: a cell counts when its centre is
that far off the surface along the views' rays, and points are drawn anywhere in it (64
cells across the box: ~5 mm for a head), so they may come half a cell diagonal closer.

The same depth maps give any point's depth behind the rig's surface (signed_depth), to
which a cold field's density is pre-fitted before the first image (prefit_density).

Only the rig's depth maps are used, so open FLAME meshes (neck, eye holes) work too: a
point seen through a hole is in front of some view's surface and so not interior.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from joker_core.cameras import Camera

from .field import Box, RadianceField
from .query_fit import fit_by_queries
from .rays import CameraSet, Pixels
from .rig_views import RigSupervision, RigViews

RESOLUTION = 64  # cells per axis over the box (~5 mm for a head)
NEAR_CELLS = 4   # free cells count when within this many cells of a non-free one
PREFIT_POOL = 16  # the density pre-fit's labelled points, in steps' worth of points


def rig_cells(views: list[RigViews], box: Box, margin: float,
              resolution: int = RESOLUTION) -> tuple[torch.Tensor, torch.Tensor]:
    """Two resolution^3 bool grids (x, y, z over [-1, 1]^3 in box units): interior, the cell
    centre lies at least `margin` metres behind the rig's surface along the ray of every view
    that has it in its image (and some view does); free, some view sees it off the rig or at
    least `margin` in front of its surface."""
    axis = (torch.arange(resolution) + 0.5) / resolution * 2 - 1
    unit = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    points = unit * box.half_size + torch.tensor(box.center)
    inside = torch.ones(len(points), dtype=torch.bool)
    seen = torch.zeros(len(points), dtype=torch.bool)
    free = torch.zeros(len(points), dtype=torch.bool)
    for rig in views:
        masks, distances = rig.masks.cpu() > 0, rig.distances.cpu()
        # Pixels at the silhouette say little about free space: beside it the head may
        # still cover part of the pixel, on it the surface runs along the ray. Nor do pixels
        # that see the inside of the surface through a hole (RigViews.facing).
        grown = F.max_pool2d(masks[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
        facing = masks if rig.facing is None else rig.facing.cpu()
        shrunk = -F.max_pool2d(-(masks & facing)[:, None].float(), 3, stride=1, padding=1)[:, 0] > 0
        for camera, mask, near, core, distance in zip(rig.cameras, masks, grown, shrunk, distances):
            col, row, along = _pixels_of(camera, points)
            framed = (col >= 0) & (col < camera.width) & (row >= 0) & (row < camera.height)
            col, row = col.clamp(0, camera.width - 1), row.clamp(0, camera.height - 1)
            surface = distance[row, col]
            inside &= (mask[row, col] & (along >= surface + margin)) | ~framed
            free |= framed & (~near[row, col] | (core[row, col] & (along <= surface - margin)))
            seen |= framed
    shape = (resolution,) * 3
    return (inside & seen).reshape(shape), free.reshape(shape)


def near_the_head(free: torch.Tensor, cells: int = NEAR_CELLS) -> torch.Tensor:
    """The free cells within `cells` cells of a non-free one: where carving matters."""
    solid = (~free).float()[None, None]
    near = F.max_pool3d(solid, 2 * cells + 1, stride=1, padding=cells)[0, 0] > 0
    return free & near


def _pixels_of(camera: Camera, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pixel column and row each world point falls in, and its distance from the camera."""
    c2w = torch.as_tensor(camera.c2w, dtype=torch.float32)
    offset = points - c2w[:3, 3]
    local = offset @ c2w[:3, :3]  # camera axes: x right, y up, looking along -z
    depth = (-local[:, 2]).clamp_min(1e-6)
    col = torch.floor(camera.fx * local[:, 0] / depth + camera.cx).long()
    row = torch.floor(-camera.fy * local[:, 1] / depth + camera.cy).long()
    return col, row, offset.norm(dim=-1)


def signed_depth(views: list[RigViews], box: Box, unit_points: torch.Tensor) -> torch.Tensor:
    """N metres per box-unit point: how far behind the rig's surface it lies, the least over
    the views that frame it (negative in front of the surface; -box.half_size off the
    silhouette or framed by no view). Along a ray, so at least the true distance inside;
    >= margin exactly where rig_cells calls a cell centre interior."""
    points = unit_points.cpu() * box.half_size + torch.tensor(box.center)
    outside = -box.half_size
    depth = torch.full((len(points),), float("inf"))
    framed_once = torch.zeros(len(points), dtype=torch.bool)
    for rig in views:
        masks, distances = rig.masks.cpu() > 0, rig.distances.cpu()
        for camera, mask, distance in zip(rig.cameras, masks, distances):
            col, row, along = _pixels_of(camera, points)
            framed = (col >= 0) & (col < camera.width) & (row >= 0) & (row < camera.height)
            col, row = col.clamp(0, camera.width - 1), row.clamp(0, camera.height - 1)
            behind = torch.where(mask[row, col], along - distance[row, col], torch.tensor(outside))
            depth = torch.where(framed, torch.minimum(depth, behind), depth)
            framed_once |= framed
    return torch.where(framed_once, depth.clamp_min(outside), torch.tensor(outside)).to(unit_points.device)


def surface_points(views: RigViews, box: Box, count: int, generator: torch.Generator) -> torch.Tensor:
    """`count` points (box units) on the rig's surface as random pixels of `views` see it."""
    hits = (views.masks.cpu() > 0).nonzero()
    view, row, col = hits[torch.randint(len(hits), (count,), generator=generator)].unbind(-1)
    cameras = CameraSet(views.cameras)
    rays = cameras.rays(Pixels(view, row, col), cameras.width)
    world = rays.origins + rays.directions * views.distances.cpu()[view, row, col, None]
    return (world - torch.tensor(box.center)) / box.half_size


def prefit_density(field: RadianceField, views: list[RigViews], settings: RigSupervision,
                   rates: tuple[float, float], generator: torch.Generator) -> float:
    """Fit the field's density to the rig before any image: `settings.prefit_steps` Adam
    steps on `prefit_points` points a step, drawn from a pool labelled once (PREFIT_POOL
    steps' worth: half uniform in the box, half on the rig's surface jittered by twice the
    band); each is held to solid_density times a ramp of its signed_depth over
    `prefit_band` metres across the surface (denser inside costs nothing). Field queries
    only, no rendering, so the photometric steps start from the rig's shape. `rates`: the
    grid's and the network's learning rates. Returns the last step's loss."""
    box, device = field.box, field.decoder[0].weight.device
    band = settings.prefit_band / box.half_size
    pool_size = settings.prefit_points * PREFIT_POOL
    surface = torch.cat([surface_points(rig, box, -(-pool_size // (2 * len(views))), generator) for rig in views])
    surface = surface + torch.randn(surface.shape, generator=generator) * 2 * band
    pool = torch.cat([torch.rand((pool_size // 2, 3), generator=generator) * 2 - 1, surface]).clamp(-1, 1)
    targets = (0.5 + signed_depth(views, box, pool) / settings.prefit_band).clamp(0, 1)
    pool, targets = pool.to(device), targets.to(device)

    def loss(pick: torch.Tensor, density: torch.Tensor, _colour: torch.Tensor) -> torch.Tensor:
        target, density = targets[pick], density / settings.solid_density
        return torch.where(target >= 1, F.relu(1 - density), (density - target).abs()).mean()

    return fit_by_queries(field, pool, loss, settings.prefit_steps, settings.prefit_points, rates, generator)


def sample_cells(marked: torch.Tensor, count: int, generator: torch.Generator,
                 resolution: int = RESOLUTION) -> torch.Tensor:
    """`count` random points (box units) uniformly within random `marked` cells (M x 3
    indices, as `cells.nonzero()` gives them)."""
    pick = marked[torch.randint(len(marked), (count,), generator=generator)]
    jitter = torch.rand((count, 3), generator=generator)
    return (pick + jitter) / resolution * 2 - 1

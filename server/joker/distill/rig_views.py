"""Weak geometric supervision from the posed rig: its silhouette and depth on the training
views (every training ray then also has a depth target, which carves the open mouth) and on
views all around the head, so the field closes the head (the training views only span the
front) and its surface lies where the rig's does.

Which orbit views and how many of their rays join each step is a preset knob
(RigSupervision); the views themselves (RigViews) are rasterized once per job from the posed
rig. A prior that can render any view of the rig (the projection prior) may also give the
orbit views' colour, which is then the only colour the back of the head ever sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from joker_core.cameras import Camera, ViewRig
from joker_core.errors import JokerError

from ..prior.base import ViewRenderer
from ..render.raster import rasterize, world_to_camera


@dataclass(frozen=True)
class RigSupervision:
    """Orbit views (every `360 / azimuths` degrees at each elevation, `size` px) and the
    rays per iteration drawn from them; `rays` 0 turns rig supervision off. With loss
    weights for them, `space_points` points per iteration inside the rig and as many in
    free space near it (in cells `space_margin` metres or more off its surface: rig_space.py)
    are held above and well below `solid_density`. `prefit_steps` > 0 first fits the
    field's density to the rig's inside and outside (rig_space.prefit_density) on
    `prefit_points` points a step, ramping across the surface over `prefit_band` metres."""

    rays: int = 0
    azimuths: int = 8
    elevations: tuple[float, ...] = (-35.0, 0.0, 35.0)
    size: int = 64
    space_points: int = 2048
    space_margin: float = 0.006
    solid_density: float = 50.0
    prefit_steps: int = 0
    prefit_points: int = 4096
    prefit_band: float = 0.004

    def __post_init__(self):
        if (self.rays < 0 or self.azimuths < 1 or not self.elevations or self.size < 8
                or self.space_points < 0 or self.space_margin < 0 or self.solid_density <= 0
                or self.prefit_steps < 0 or self.prefit_points < 2 or self.prefit_band <= 0):
            raise JokerError(f"invalid rig supervision {self}",
                             "use rays >= 0, azimuths >= 1, one or more elevations, size >= 8, "
                             "space points >= 0, margin >= 0, a positive solid density, "
                             "pre-fit steps >= 0, pre-fit points >= 2 and a positive pre-fit band")

    def cameras(self, rig: ViewRig) -> list[Camera]:
        sized = ViewRig(rig.center, rig.distance, rig.fov_deg, self.size)
        return [camera for elevation in self.elevations for camera in sized.orbit(self.azimuths, elevation)]


@dataclass
class RigViews:
    """The posed rig seen from `cameras`: silhouette (V x H x W, 0/1), distance from the
    camera along each pixel's ray in metres (V x H x W, 0 off the head), when a prior
    rendered them, colour (V x 3 x H x W in [0, 1]), and whether the surface a pixel sees
    faces the camera (V x H x W bool; None: assume it does). A pixel that sees the inside of
    the surface looks through a hole of an open mesh (FLAME's neck or open mouth), so the
    space before it is inside the head, not free."""

    cameras: Sequence[Camera]
    masks: torch.Tensor
    distances: torch.Tensor
    colors: torch.Tensor | None = None
    facing: torch.Tensor | None = None

    def to(self, device: torch.device) -> "RigViews":
        colors, facing = (None if image is None else image.to(device) for image in (self.colors, self.facing))
        return RigViews(self.cameras, self.masks.to(device), self.distances.to(device), colors, facing)


@dataclass
class RigGeometry:
    """What distill() takes: the rig on the training views (same cameras, same order) and
    on the orbit views."""

    training: RigViews
    orbit: RigViews

    def to(self, device: torch.device) -> "RigGeometry":
        return RigGeometry(self.training.to(device), self.orbit.to(device))


def rig_views(vertices: np.ndarray, faces: np.ndarray, cameras: Sequence[Camera],
              color: ViewRenderer | None = None) -> RigViews:
    """Rasterize the posed rig (N x 3, FLAME frame) from every camera; `color(vertices,
    cameras)` (a prior's view_renderer) adds what it looks like."""
    points = torch.as_tensor(vertices, dtype=torch.float32)
    triangles = torch.as_tensor(faces, dtype=torch.int64)
    masks, distances, facing = [], [], []
    for camera in cameras:
        local = world_to_camera(points, camera)
        fragments = rasterize(local, triangles, camera)
        masks.append(fragments.mask.float())
        distances.append(fragments.depth * _ray_length_per_depth(camera))
        facing.append(fragments.mask & _faces_camera(local, triangles)[fragments.triangle_id.clamp_min(0)])
    colors = None if color is None else color(points, cameras).float()
    return RigViews(list(cameras), torch.stack(masks), torch.stack(distances), colors, torch.stack(facing))


def _faces_camera(local: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """F bools: the triangle's outward side (counter-clockwise winding) faces the camera,
    which sits at the origin of the camera-space vertices `local`."""
    a, b, c = (local[faces[:, i]] for i in range(3))
    return (torch.linalg.cross(b - a, c - a) * a).sum(-1) < 0


def _ray_length_per_depth(camera: Camera) -> torch.Tensor:
    """H x W: distance along each pixel-centre ray per unit of depth along the view axis."""
    cols = (torch.arange(camera.width) + 0.5 - camera.cx) / camera.fx
    rows = (torch.arange(camera.height) + 0.5 - camera.cy) / camera.fy
    return torch.sqrt(1.0 + rows[:, None] ** 2 + cols[None, :] ** 2)

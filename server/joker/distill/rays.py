"""Rays through pixel centres of the shared cameras (joker_core.cameras), at any render
resolution, for whole images or random square patches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from joker_core.cameras import Camera
from joker_core.errors import JokerError


@dataclass
class Rays:
    origins: torch.Tensor     # N x 3, world
    directions: torch.Tensor  # N x 3, world, unit length


@dataclass
class Pixels:
    """Pixel addresses at one render size: which view, which row and column."""

    view: torch.Tensor  # N (long)
    row: torch.Tensor   # N (long)
    col: torch.Tensor   # N (long)

    def __len__(self) -> int:
        return self.view.shape[0]

    def slice(self, start: int, stop: int) -> "Pixels":
        return Pixels(self.view[start:stop], self.row[start:stop], self.col[start:stop])


class CameraSet:
    """All views' cameras as tensors, so rays for any pixels come from one batched op."""

    def __init__(self, cameras: Sequence[Camera], device: torch.device | str = "cpu"):
        if not cameras:
            raise JokerError("no cameras to render from", "give at least one view")
        sizes = {(c.width, c.height) for c in cameras}
        if len(sizes) != 1:
            raise JokerError(f"views have different image sizes {sorted(sizes)}",
                             "render every view at the same size")
        (self.width, self.height), = sizes
        self.c2w = torch.tensor(np.stack([c.c2w for c in cameras]), dtype=torch.float32, device=device)
        self.intrinsics = torch.tensor([[c.fx, c.fy, c.cx, c.cy] for c in cameras],
                                       dtype=torch.float32, device=device)

    def __len__(self) -> int:
        return self.c2w.shape[0]

    def size_at(self, width: int) -> tuple[int, int]:
        """(height, width) of the views rendered `width` pixels wide."""
        return max(1, round(self.height * width / self.width)), width

    def rays(self, pixels: Pixels, width: int) -> Rays:
        """Rays through the centres of `pixels` of the views rendered `width` pixels wide."""
        scale = width / self.width
        fx, fy, cx, cy = (self.intrinsics[pixels.view] * scale).unbind(-1)
        x = (pixels.col.float() + 0.5 - cx) / fx
        y = -(pixels.row.float() + 0.5 - cy) / fy  # image rows go down, camera y goes up
        local = torch.stack([x, y, -torch.ones_like(x)], -1)  # the camera looks along -z
        pose = self.c2w[pixels.view]
        directions = torch.einsum("nij,nj->ni", pose[:, :3, :3], local)
        return Rays(pose[:, :3, 3], directions / directions.norm(dim=-1, keepdim=True))

    def image_pixels(self, view: int, width: int) -> Pixels:
        height, width = self.size_at(width)
        rows, cols = torch.meshgrid(torch.arange(height, device=self.c2w.device),
                                    torch.arange(width, device=self.c2w.device), indexing="ij")
        return Pixels(torch.full((height * width,), view, device=self.c2w.device),
                      rows.reshape(-1), cols.reshape(-1))

    def patch_pixels(self, count: int, patch: int, width: int, generator: torch.Generator,
                     shared: bool = False) -> Pixels:
        """`count` random `patch` x `patch` squares (clipped to the image) from random views;
        pixels ordered patch by patch, row-major, so they reshape to count x p x p. `shared`:
        distinct views (while there are enough) and one patch location for all, as published."""
        height, width = self.size_at(width)
        patch = min(patch, height, width)
        places = 1 if shared else count
        if shared:
            view = torch.cat([torch.randperm(len(self), generator=generator)
                              for _ in range(-(-count // len(self)))])[:count]
        else:
            view = torch.randint(len(self), (count,), generator=generator)
        top = torch.randint(height - patch + 1, (places,), generator=generator).expand(count)
        left = torch.randint(width - patch + 1, (places,), generator=generator).expand(count)
        offset = torch.arange(patch)
        rows = (top[:, None, None] + offset[None, :, None]).expand(count, patch, patch)
        cols = (left[:, None, None] + offset[None, None, :]).expand(count, patch, patch)
        device = self.c2w.device
        return Pixels(view[:, None, None].expand(count, patch, patch).reshape(-1).to(device),
                      rows.reshape(-1).to(device), cols.reshape(-1).to(device))

"""What a warm-started run (a sequence frame) carries over from the run before it.

A warm frame's field starts as a copy of its predecessor's. Fitted to fresh prior
targets everywhere, it would keep changing where the rig did not move (the optimiser does
not stop where the image did not change; a diffusion prior answers each refresh anew),
which a viewer sees as flicker. So an anchor holds those regions: in every training view
the pixels whose rig normal map and silhouette did not change since the previous frame,
with a margin around each change, take the previous field's render as their target; the
prior's targets rule only where the rig moved.

Before that, the copy is moved along with the rig (carry_along_rig): fitted, by field
queries alone, to hold the previous field's density and colour at where each point was
in the previous frame, so the warm run refines a head that is already where the rig is.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch.nn import functional as F

from ..prior.base import Views
from .field import RadianceField
from .query_fit import fit_by_queries
from .rays import CameraSet
from .render import render_images

CHANGE_THRESHOLD = 2.5 / 255  # encoded normals that differ by rounding alone are unchanged
MARGIN = 0.03                  # of the view width: near a change the prior still rules


@dataclass(frozen=True)
class TargetAnchor:
    """Fixed images that replace the prior's targets where `weights` is 1."""

    images: torch.Tensor   # V x 3 x H x W, one per training view
    weights: torch.Tensor  # V x 1 x H x W in [0, 1]

    def blend(self, targets: torch.Tensor, views: Sequence[int]) -> torch.Tensor:
        """`targets` of the training views `views` with the anchored pixels replaced."""
        index = list(views)
        weights = self.weights[index].to(targets.device)
        return weights * self.images[index].to(targets.device) + (1 - weights) * targets

    @property
    def share(self) -> float:
        """The anchored fraction of all training pixels."""
        return float(self.weights.mean())


@dataclass(frozen=True)
class WarmStart:
    field: RadianceField                  # its weights are copied; it stays as it was
    targets: torch.Tensor | None = None   # V x 3 x H x W: stand in for the first refresh's
    anchor: TargetAnchor | None = None


def unchanged_weights(before: Views, after: Views) -> torch.Tensor:
    """V x 1 x H x W: 1 where neither the rig's normal map nor its silhouette changed
    within MARGIN of the pixel, 0 elsewhere."""
    changed = (after.normal_maps - before.normal_maps).abs().amax(1, keepdim=True) > CHANGE_THRESHOLD
    changed |= after.foreground() != before.foreground()
    radius = max(1, round(MARGIN * after.normal_maps.shape[-1]))
    near_change = F.max_pool2d(changed.float(), 2 * radius + 1, stride=1, padding=radius)
    return 1.0 - near_change


def same_cameras(before: Views, after: Views) -> bool:
    return ([camera.to_dict() for camera in before.cameras] == [camera.to_dict() for camera in after.cameras]
            and before.normal_maps.shape == after.normal_maps.shape)


def anchor_to_previous(field: RadianceField, occupancy, before: Views, after: Views, samples_per_ray: int) -> TargetAnchor | None:
    """The previous frame's `field` (fitted to views `before`) as the target of this frame's
    views `after` wherever the rig did not change; None when the views differ (no pixel
    of one view is the same pixel of the other)."""
    if not same_cameras(before, after):
        return None
    device = next(field.parameters()).device
    images = render_images(field, CameraSet(after.cameras, device), range(len(after)),
                           after.normal_maps.shape[-1], samples_per_ray, occupancy)
    return TargetAnchor(images, unchanged_weights(before, after).to(images.device))


# Motion compensation (carry_along_rig). A warm frame's copied field has the head where
# the previous frame's rig was; a warm run's few hundred steps cannot move far what the
# images only nudge, so errors piled up along a sustained motion (bench_sequence.py).
CARRY_NEIGHBOURS = 8   # rig vertices whose displacements a point's interpolates
CARRY_FADE_M = 0.02    # points move fully within half this of the posed rig, not at all beyond it
CARRY_STEPS = 400      # Adam steps of field queries, no rendering (~6 s of one core on preview);
                       # the carried field's held-out PSNR stops rising here (150: -0.8 dB, 1000: +0.0)
CARRY_POINTS = 4096    # points a step, drawn from a pool of CARRY_POOL steps' worth
CARRY_POOL = 16


def rig_displacement(points: torch.Tensor, before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """N x 3 world displacements: each point's share of how the rig's vertices moved from
    `before` to `after` (V x 3, posed, world): inverse-distance weights over its
    CARRY_NEIGHBOURS nearest vertices of `after`, fading from half CARRY_FADE_M to zero at it."""
    moved = after - before
    out = []
    for chunk in points.split(8192):
        distance, nearest = torch.cdist(chunk, after).topk(CARRY_NEIGHBOURS, largest=False)
        weights = 1.0 / (distance + 1e-4)
        shift = (weights[..., None] * moved[nearest]).sum(1) / weights.sum(1, keepdim=True)
        out.append(shift * (2 - 2 * distance[:, 0] / CARRY_FADE_M).clamp(0, 1)[:, None])
    return torch.cat(out)


def carry_along_rig(field: RadianceField, before: np.ndarray, after: np.ndarray, rates: tuple[float, float],
                    generator: torch.Generator, cancel: Callable[[], bool] | None = None) -> RadianceField:
    """A copy of `field` fitted so that its density and colour at x are `field`'s at
    x - d(x), d the rig's displacement from the posed vertices `before` to `after`
    (rig_displacement): the previous frame's head moved with the rig, so a warm run only
    refines. Points: three quarters near either rig's surface, a quarter anywhere in the
    box (where d is 0: what did not move stays). Density is compared as log(1 + density)
    (opaque is opaque, however dense), colour where the previous field has substance.
    `rates`: the grid's and the network's learning rates; `cancel()` True stops it
    (JobCancelled) between steps."""
    box, device = field.box, next(field.parameters()).device
    before_t, after_t = (torch.as_tensor(v, dtype=torch.float32) for v in (before, after))
    size = CARRY_POINTS * CARRY_POOL
    vertices = torch.cat([after_t, before_t])
    near = vertices[torch.randint(len(vertices), (size - size // 4,), generator=generator)]
    near = near + torch.randn(near.shape, generator=generator) * CARRY_FADE_M / 4
    anywhere = (torch.rand((size // 4, 3), generator=generator) * 2 - 1) * box.half_size + torch.tensor(box.center)
    world = torch.cat([near, anywhere])
    source = world - rig_displacement(world, before_t, after_t)
    pool = box.to_unit(world).clamp(-1, 1).to(device)
    with torch.no_grad():
        density, colour = field.query_unit(box.to_unit(source).to(device))
        target_density, substance = torch.log1p(density), 1 - torch.exp(-density)
    carried = copy.deepcopy(field)

    def loss(pick: torch.Tensor, density: torch.Tensor, rgb: torch.Tensor) -> torch.Tensor:
        return ((torch.log1p(density) - target_density[pick]).abs().mean()
                + (substance[pick, None] * (rgb - colour[pick]).abs()).mean())

    fit_by_queries(carried, pool, loss, CARRY_STEPS, CARRY_POINTS, rates, generator, cancel)
    return carried

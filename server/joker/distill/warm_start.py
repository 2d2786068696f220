"""What a warm-started run (a sequence frame) carries over from the run before it.

A warm frame's field starts as a copy of its predecessor's. Fitted to fresh prior
targets everywhere, it would keep changing where the rig did not move (the optimiser does
not stop where the image did not change; a diffusion prior answers each refresh anew),
which a viewer sees as flicker. So an anchor holds those regions: in every training view
the pixels whose rig normal map and silhouette did not change since the previous frame,
with a margin around each change, take the previous field's render as their target; the
prior's targets rule only where the rig moved.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.nn import functional as F

from ..prior.base import Views
from .field import RadianceField
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

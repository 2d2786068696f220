"""Warm starts: which pixels the anchor holds still, and that the distiller's targets obey it."""

import torch

from joker.distill import Box, RadianceField, ViewGrid, distill
from joker.distill.warm_start import MARGIN, TargetAnchor, WarmStart, anchor_to_previous, unchanged_weights
from joker.prior.base import Views
from joker.prior.oracle import EllipsoidOracle

from test_distiller import CONDITION, LEVELS, tiny_preset


def _views(normal_maps: torch.Tensor, cameras) -> Views:
    return Views(cameras, normal_maps)


def test_only_pixels_near_a_change_lose_their_anchor():
    oracle = EllipsoidOracle(levels=LEVELS)
    before = oracle.views(tiny_preset().views.cameras())
    moved = before.normal_maps.clone()
    moved[1, :, 20, 10] = torch.tensor([0.9, 0.1, 0.5])  # one pixel of view 1 changes
    after = _views(moved, before.cameras)
    weights = unchanged_weights(before, after)
    radius = round(MARGIN * moved.shape[-1])
    assert weights.shape == (len(before), 1, *moved.shape[-2:])
    assert torch.equal(weights[[0, 2, 3, 4, 5]], torch.ones_like(weights[[0, 2, 3, 4, 5]]))
    assert weights[1, 0, 20 - radius:20 + radius + 1, 10 - radius:10 + radius + 1].max() == 0
    assert weights[1].sum() == weights[1].numel() - (2 * radius + 1) ** 2
    assert torch.equal(unchanged_weights(before, before), torch.ones_like(weights))


def test_rounding_noise_in_the_normal_maps_is_not_a_change():
    oracle = EllipsoidOracle(levels=LEVELS)
    before = oracle.views(tiny_preset().views.cameras())
    on_head = before.normal_maps.amax(1, keepdim=True) > 0
    after = _views((before.normal_maps + on_head * 1.5 / 255).clamp(max=1), before.cameras)
    assert unchanged_weights(before, after).min() == 1


def test_blend_takes_the_anchor_where_weighted_and_the_targets_elsewhere():
    images, targets = torch.zeros(3, 3, 4, 4), torch.ones(2, 3, 4, 4)
    weights = torch.zeros(3, 1, 4, 4)
    weights[2, :, :2] = 1.0
    blended = TargetAnchor(images, weights).blend(targets, [0, 2])
    assert torch.equal(blended[0], targets[0])
    assert blended[1, :, :2].max() == 0 and blended[1, :, 2:].min() == 1


def test_every_refreshed_target_keeps_the_anchored_pixels():
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = tiny_preset(iterations=32, interval=8)
    views = oracle.views(chosen.views.cameras())
    images = torch.rand(len(views), 3, *views.normal_maps.shape[-2:], generator=torch.Generator().manual_seed(0))
    weights = torch.zeros(len(views), 1, *views.normal_maps.shape[-2:])
    weights[:, :, :, :16] = 1.0  # the left half of every view is anchored
    start = WarmStart(RadianceField(Box(), chosen.field), anchor=TargetAnchor(images, weights))
    result = distill(oracle, views, CONDITION, chosen, seed=1, warm_start=start)
    assert torch.allclose(result.targets[..., :16], images[..., :16])
    free = oracle.render(views.cameras)[0]  # what the oracle answers at any noise level
    assert torch.allclose(result.targets[..., 16:], free[..., 16:].clamp(0, 1))


def test_the_anchor_is_the_previous_field_rendered_at_the_new_views_and_needs_the_same_cameras():
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = tiny_preset()
    views = oracle.views(chosen.views.cameras())
    field = RadianceField(Box(), chosen.field)
    anchor = anchor_to_previous(field, None, views, views, chosen.samples_per_ray)
    assert anchor.images.shape == (len(views), 3, *views.normal_maps.shape[-2:]) and anchor.share == 1.0
    other = oracle.views(ViewGrid(2, 3, size=32).cameras())
    assert anchor_to_previous(field, None, views, other, chosen.samples_per_ray) is None



def test_given_targets_stand_in_for_the_first_refresh():
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = tiny_preset()
    views = oracle.views(chosen.views.cameras())
    targets = oracle.render(views.cameras)[0]
    distill(oracle, views, CONDITION, chosen, seed=1, warm_start=WarmStart(RadianceField(Box(), chosen.field), targets))
    refreshed_levels = [call.level for call in oracle.calls if call.kind == "predict_clean"]
    assert refreshed_levels == [20, 40]  # level 0's refresh was the given targets

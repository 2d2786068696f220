"""A warm frame's budget: a share of the cold schedule that follows the rig's motion."""

import numpy as np
import pytest

from joker.distill.schedule import PRESETS
from joker.prior.base import NoiseLevels
from joker.sequence.budget import (COLD_ABOVE_M, HOLD_BELOW_M, MAX_SHARE, MIN_SHARE, REUSE_TARGETS_BELOW_M,
                                   WARM_RATE_END, frame_budget, rig_motion, warm_preset)

LEVELS = NoiseLevels()


def evaluations(preset, skip_first=False):
    refreshes = preset.schedule.refreshes(LEVELS)[skip_first:]
    return sum(refresh.steps for refresh in refreshes)


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("share", [MIN_SHARE, 0.25, MAX_SHARE])
def test_a_warm_preset_costs_at_most_its_share_of_the_cold_one(name, share):
    cold = PRESETS[name]
    warm = warm_preset(cold, LEVELS, share)
    assert evaluations(warm) <= share * evaluations(cold) + 1  # +1: a warm frame refreshes at least once
    assert warm.schedule.iterations <= round(share * cold.schedule.iterations) + 1
    assert warm.views == cold.views and warm.field == cold.field  # the field carries over
    assert (warm.lr_grid, warm.lr_network) == (cold.lr_grid, cold.lr_network) and cold.lr_end == 1.0
    assert warm.rate_share(warm.schedule.iterations) == pytest.approx(WARM_RATE_END)  # annealed, to rest


def test_a_warm_preset_skips_the_noisiest_levels_and_keeps_the_switch():
    cold = PRESETS["published"]
    warm = warm_preset(cold, LEVELS, MAX_SHARE).schedule.refreshes(LEVELS)
    stage1 = [refresh.level for refresh in warm if refresh.stage == 1]
    assert stage1 and min(stage1) > 0
    assert warm[-1].stage == 2 and warm[-1].level == cold.schedule.switch_level(LEVELS)


def test_the_share_grows_with_motion_and_a_cut_is_cold():
    cold = PRESETS["preview"]
    shares = [frame_budget(cold, LEVELS, motion, same_prompt=False).share for motion in (0.0, 0.002, 0.005, 0.02)]
    assert shares == sorted(shares) and shares[0] == MIN_SHARE and shares[-1] == MAX_SHARE
    cut = frame_budget(cold, LEVELS, COLD_ABOVE_M * 1.5)
    assert not cut.warm and cut.preset == cold


def test_a_pose_held_under_the_same_prompt_costs_nothing_and_a_new_prompt_a_short_run():
    cold = PRESETS["preview"]
    held = frame_budget(cold, LEVELS, 0.0)
    assert held.held and held.warm and held.share == 0.0 and not held.reuse_targets
    reprompted = frame_budget(cold, LEVELS, 0.0, same_prompt=False)
    assert not reprompted.held and reprompted.share == MIN_SHARE and reprompted.reuse_targets
    assert not frame_budget(cold, LEVELS, HOLD_BELOW_M * 2).held


def test_targets_are_reused_only_when_the_rig_barely_moved():
    cold = PRESETS["preview"]
    assert frame_budget(cold, LEVELS, REUSE_TARGETS_BELOW_M / 2).reuse_targets
    assert not frame_budget(cold, LEVELS, REUSE_TARGETS_BELOW_M * 2).reuse_targets


def test_rig_motion_is_the_largest_vertex_displacement():
    before = np.zeros((4, 3))
    after = before.copy()
    after[2] = (0.003, 0.004, 0.0)
    assert rig_motion(before, after) == pytest.approx(0.005)

import dataclasses

import pytest
from hypothesis import given, settings, strategies as st

from joker.distill.render import BOX_DIAGONAL
from joker.distill.schedule import PRESETS, Schedule, preset
from joker.prior.base import NoiseLevels
from joker_core.errors import JokerError

PUBLISHED_LEVELS = NoiseLevels(100, 1000)


def test_published_preset_is_the_papers_schedule():
    published = preset("published")
    refreshes = published.schedule.refreshes(PUBLISHED_LEVELS)
    stage1 = [r for r in refreshes if r.stage == 1]
    assert [r.level for r in stage1] == list(range(60))
    assert [r.iteration for r in stage1] == [130 * i for i in range(60)]
    stage2, = [r for r in refreshes if r.stage == 2]
    assert (stage2.iteration, stage2.level, stage2.steps) == (7800, 60, 40)
    assert PUBLISHED_LEVELS.timestep(stage2.level) == 400
    assert PUBLISHED_LEVELS.descent(stage2.level, stage2.steps) == list(range(400, 0, -10))
    views = published.views.azimuths * published.views.elevations
    assert views == 400 and published.views.size == 512
    assert published.schedule.prior_evaluations(PUBLISHED_LEVELS, views) == 40_000
    assert published.schedule.iterations == 20_000 and published.samples_per_ray == 200


def test_published_preset_is_the_papers_table():
    """design.md §3 and the authors' configs/distillation, item by item."""
    published = preset("published")
    schedule, field = published.schedule, published.field
    # density blob 10 * (1 - |x| / 0.125) in a box of radius 0.25: zero at half the box
    assert (field.blob_density, field.blob_radius) == (10.0, 0.125 / 0.25)
    grid = field.hash_grid  # 16 levels x 2 features, table 2^19, base resolution 16, scale 1.447; MLP 64 wide
    assert (grid.levels, grid.features, grid.log2_table, grid.base_resolution, grid.per_level_scale,
            field.hidden) == (16, 2, 19, 16, 1.447, 64)
    assert published.weight_decay == 0.01 and (published.lr_grid, published.lr_network) == (1e-2, 1e-3)
    assert (schedule.patches, schedule.patch_size, schedule.shared_patch) == (64, 64, True)
    assert published.guidance_scale == 19.0 and published.lr_end == 1.0
    assert (published.losses.l1, published.losses.lpips, published.losses.sparsity) == (1.0, 1.0, 1e-6)
    assert not published.rig.rays
    # nerfacc's grid, alpha threshold 0.01 at the render step 1.732 * 2 * 0.25 / 200 (world) of a box
    # of radius 0.25, i.e. BOX_DIAGONAL / 200 in box units
    assert published.occupancy_grid and published.march and not published.occupancy_dilation
    assert published.occupancy_alpha() == pytest.approx(0.01)
    assert BOX_DIAGONAL / published.samples_per_ray * 0.25 == pytest.approx(1.732 * 2 * 0.25 / 200, rel=1e-4)
    assert schedule.resolutions == ((0, 64), (200, 128), (3000, 256), (4500, 384), (7000, 512))


@settings(max_examples=60, deadline=None)
@given(count=st.integers(5, 100), fraction=st.floats(0.05, 0.95), stride=st.integers(1, 12),
       k=st.integers(1, 50), interval=st.integers(1, 50))
def test_stage1_descends_in_noise_and_stage2_starts_at_the_fraction(count, fraction, stride, k, interval):
    levels = NoiseLevels(count, 1000)
    schedule = Schedule(iterations=10**6, refresh_interval=interval, stage_fraction=fraction,
                        level_stride=stride, k_steps=k)
    refreshes = schedule.refreshes(levels)
    *stage1, stage2 = refreshes
    timesteps = [levels.timestep(r.level) for r in stage1]
    assert all(a > b for a, b in zip(timesteps, timesteps[1:]))
    assert all(r.stage == 1 and r.steps == 1 for r in stage1)
    assert stage2.stage == 2 and stage2.level == schedule.switch_level(levels)
    assert abs(stage2.level - fraction * count) <= 1
    assert all(r.level < stage2.level for r in stage1)
    assert stage2.steps == len(levels.descent(stage2.level, k)) <= k
    assert [r.iteration for r in refreshes] == [interval * i for i in range(len(refreshes))]
    assert schedule.prior_evaluations(levels, 7) == 7 * (len(stage1) + stage2.steps)


def test_render_width_follows_the_resolution_schedule():
    schedule = preset("published").schedule
    assert [schedule.width_at(i) for i in (0, 199, 200, 2999, 3000, 4500, 6999, 7000, 19_999)] == \
        [64, 64, 128, 128, 256, 384, 384, 512, 512]


@pytest.mark.parametrize("fields", [dict(stage_fraction=1.0), dict(refresh_interval=0), dict(k_steps=0),
                                    dict(resolutions=((10, 64),)), dict(resolutions=((0, 64), (0, 128))),
                                    dict(level_stride=0), dict(patches=0)])
def test_impossible_schedules_are_refused_with_a_fix(fields):
    with pytest.raises(JokerError, match="Fix:"):
        Schedule(**fields)


def test_a_stage2_that_never_comes_is_refused():
    with pytest.raises(JokerError, match="raise iterations"):
        Schedule(iterations=100, refresh_interval=10).refreshes(PUBLISHED_LEVELS)


def test_every_preset_has_a_valid_schedule_and_unknown_names_are_refused():
    for named in PRESETS.values():
        assert named.schedule.refreshes(PUBLISHED_LEVELS)[-1].iteration < named.schedule.iterations
    with pytest.raises(JokerError, match="preview"):
        preset("ultra")


def test_learning_rates_fall_along_a_half_cosine_to_lr_end_or_stay_constant():
    annealed = dataclasses.replace(preset("preview"), lr_end=0.1)
    iterations = annealed.schedule.iterations
    shares = [annealed.rate_share(i) for i in range(0, iterations + 1, iterations // 10)]
    assert shares[0] == 1.0 and shares[-1] == pytest.approx(0.1) and shares == sorted(shares, reverse=True)
    assert annealed.rate_share(iterations // 2) == pytest.approx(0.55)
    constant = dataclasses.replace(annealed, lr_end=1.0)
    assert {constant.rate_share(i) for i in (0, iterations // 2, iterations)} == {1.0}

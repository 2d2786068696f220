import dataclasses
import logging
import threading
import time

import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from joker.distill import Box, RadianceField, Schedule, ViewGrid, distill, preset
from joker.distill.losses import LossWeights, psnr
from joker.distill.lpips import Lpips
from joker.distill.rays import CameraSet
from joker.distill.render import render_images
from joker.prior.base import Condition, NoiseLevels
from joker.prior.oracle import EllipsoidOracle
from joker_core.cameras import ViewRig
from joker_core.errors import JobCancelled, JokerError

CONDITION = Condition(torch.zeros(1, 3, 8, 8))
LEVELS = NoiseLevels(100, 1000)


def tiny_preset(iterations=40, interval=8, **schedule):
    """3 x 2 views at 32 px, levels 0/20/40 in stage 1, stage 2 from level 60 with k = 5."""
    fields = dict(iterations=iterations, refresh_interval=interval, level_stride=20, k_steps=5,
                  resolutions=((0, 16), (16, 32)), patches=2, patch_size=16)
    return dataclasses.replace(preset("preview"), views=ViewGrid(3, 2, size=32),
                               schedule=Schedule(**{**fields, **schedule}), samples_per_ray=16)


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory):
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = tiny_preset()
    views = oracle.views(chosen.views.cameras())
    reports = []
    result = distill(oracle, views, CONDITION, chosen, seed=3,
                     preview_dir=tmp_path_factory.mktemp("previews"), on_progress=reports.append)
    return oracle, chosen, views, reports, result


def test_refreshes_follow_the_schedule_and_stage2_descends_k_steps(recorded_run):
    oracle, chosen, views, _, result = recorded_run
    # Stage 1 asks for 6 views in one call; stage 2 one view per call (8 view-steps at most).
    assert [(c.kind, c.level, c.steps, c.views) for c in oracle.calls] == \
        [("predict_clean", level, 1, 6) for level in (0, 20, 40)] + [("denoise", 60, 5, 1)] * 6
    assert [LEVELS.timestep(c.level) for c in oracle.calls[:4]] == [999, 799, 599, 400]
    expected = chosen.schedule.prior_evaluations(LEVELS, len(views))
    assert result.prior_evaluations == oracle.evaluations.total == expected == 6 * (3 + 5)
    assert result.nerf_steps == chosen.schedule.iterations


def test_progress_is_reported_monotonically_through_both_stages(recorded_run):
    _, chosen, _, reports, _ = recorded_run
    progress = [r.progress for r in reports]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert [r.stage for r in reports] == sorted(r.stage for r in reports)
    assert {r.stage for r in reports} == {1, 2}
    assert reports[-1].nerf_steps == chosen.schedule.iterations and reports[-1].eta_seconds == 0
    assert [r.prior_evaluations for r in reports] == sorted(r.prior_evaluations for r in reports)
    assert reports[-1].prior_evaluations == 48


def test_a_preview_strip_is_written_at_each_refresh(recorded_run):
    _, _, _, _, result = recorded_run
    assert [p.name for p in result.previews] == [
        "refresh_000_stage1_level000.png", "refresh_001_stage1_level020.png",
        "refresh_002_stage1_level040.png", "refresh_003_stage2_level060.png"]
    with Image.open(result.previews[0]) as first, Image.open(result.previews[-1]) as last:
        assert first.size == (4 * 16, 2 * 16) and last.size == (4 * 32, 2 * 32)
    assert not list(result.previews[0].parent.glob("*.part"))


def test_same_seed_same_field_other_seed_other_field():
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = tiny_preset(iterations=8, interval=2)
    views = oracle.views(chosen.views.cameras())

    def parameters(seed):
        field = distill(oracle, views, CONDITION, chosen, seed=seed).field
        return torch.cat([p.detach().flatten() for p in field.parameters()])

    first = parameters(1)
    assert torch.equal(first, parameters(1))
    assert not torch.allclose(first, parameters(2))


def test_cancel_stops_within_a_second():
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = tiny_preset(iterations=100_000, interval=5000)
    views = oracle.views(chosen.views.cameras())
    cancelled_at = []
    timer = threading.Timer(0.5, lambda: cancelled_at.append(time.monotonic()))
    timer.start()
    with pytest.raises(JobCancelled):
        distill(oracle, views, CONDITION, chosen, cancel=lambda: bool(cancelled_at))
    assert time.monotonic() - cancelled_at[0] < 1.0


def test_a_small_fit_to_the_oracle_reaches_a_psnr_an_untrained_field_does_not():
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = tiny_preset(iterations=150, interval=20, resolutions=((0, 32),), patches=2)
    views = oracle.views(chosen.views.cameras())
    held_out = ViewRig(size=32).random(3, azimuth_range=40, elevation_range=15, seed=11)
    truth = oracle.render(held_out)[0]

    def fidelity(field, occupancy=None):
        return psnr(render_images(field, CameraSet(held_out), range(3), 32, 16, occupancy), truth)

    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = RadianceField(Box(), chosen.field)
    trained = distill(oracle, views, CONDITION, chosen)
    assert fidelity(untrained) < 20.0 < fidelity(trained.field, trained.occupancy)


def test_cuda_without_cuda_is_refused():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = tiny_preset()
    with pytest.raises(JokerError, match="CPU"):
        distill(oracle, oracle.views(chosen.views.cameras()), CONDITION, chosen, device="cuda")


def test_lpips_is_an_explicit_setting_and_its_absence_is_said(tmp_path, monkeypatch, caplog):
    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = dataclasses.replace(tiny_preset(iterations=4, interval=1),
                                 losses=LossWeights(l1=1.0, lpips=1.0, sparsity=0.0))
    views = oracle.views(chosen.views.cameras())
    weights = tmp_path / "lpips_vgg.safetensors"
    save_file(Lpips().state_dict(), str(weights))
    monkeypatch.setenv("JOKER_LPIPS_WEIGHTS", str(weights))  # no longer looked at
    with caplog.at_level(logging.WARNING, logger="joker.distill"):
        missing = distill(oracle, views, CONDITION, chosen)
    assert (missing.losses_used, missing.lpips) == (("l1",), "missing")
    assert "no LPIPS weights were given" in caplog.text
    used = distill(oracle, views, CONDITION, chosen, lpips_weights=weights)
    assert (used.losses_used, used.lpips) == (("l1", "lpips"), "used")
    with pytest.raises(JokerError, match="weights LPIPS 1.0 but no LPIPS weights"):
        distill(oracle, views, CONDITION, chosen, lpips_required=True)
    plain = dataclasses.replace(chosen, losses=LossWeights(l1=1.0, sparsity=0.0))
    assert distill(oracle, views, CONDITION, plain).lpips == "off"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_marching_preset_distils_on_cuda_with_nerfaccs_estimator():
    from joker.distill.occupancy import NerfaccGrid

    oracle = EllipsoidOracle(levels=LEVELS)
    chosen = dataclasses.replace(tiny_preset(iterations=120, interval=20, resolutions=((0, 32),), patches=2),
                                 march=True, samples_per_ray=32)
    result = distill(oracle, oracle.views(chosen.views.cameras()), CONDITION, chosen, device="cuda")
    assert isinstance(result.occupancy, NerfaccGrid), "nerfacc's CUDA extension did not build"
    held_out = ViewRig(size=32).random(3, azimuth_range=40, elevation_range=15, seed=11)
    renders = render_images(result.field, CameraSet(held_out, "cuda"), range(3), 32, 32, result.occupancy)
    assert psnr(renders.cpu(), oracle.render(held_out)[0]) > 20.0
    assert 0 < result.samples_per_ray < 32

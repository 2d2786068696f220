"""DiffusionPrior behind the Prior interface: cache, guidance, schedule, determinism, counting, bad input."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler

from joker.prior.base import Condition, NoiseLevels
from joker.prior.diffusion.ddim import ddim_step, guided
from joker.prior.diffusion.model import PromptTruncatedWarning
from joker.prior.diffusion.pipeline import DiffusionPrior
from joker.prior.diffusion.reference_cache import ReferenceCache
from joker_core.errors import JokerError


def _noisy(prior, views, level=60, seed=5):
    images = torch.rand(len(views), 3, 64, 64, generator=torch.Generator().manual_seed(seed))
    return prior.noise(images, level, torch.Generator().manual_seed(seed))


def test_cached_and_uncached_reference_features_agree(tiny_model, make_views, make_condition):
    views, condition = make_views(5), make_condition(prompt="a woman laughing")
    cached = DiffusionPrior(tiny_model, chunk_size=2)
    uncached = DiffusionPrior(tiny_model, chunk_size=2, cache=ReferenceCache(capacity=0))
    noisy = _noisy(cached, views)
    first = cached.denoise(noisy, views, condition, steps=2)
    second = uncached.denoise(noisy, views, condition, steps=2)
    torch.testing.assert_close(first, second, atol=1e-5, rtol=1e-5)
    # 2 timesteps x 2 texts (prompt, negative) reference passes + the reference latents, for
    # 3 chunks: the uncached prior redoes them per chunk, the cached one never.
    assert cached.cache.misses == 2 * 2 + 1
    assert uncached.cache.misses == 3 * 2 * (2 + 1)


def test_guidance_combines_the_two_halves_by_its_formula(tiny_model, make_views, make_condition):
    prior = DiffusionPrior(tiny_model, chunk_size=4)
    views = make_views(3)
    latents = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    conditional = prior.predict_noise(latents, 501, views, make_condition(prompt="smiling", guidance_scale=1.0))
    unconditional = prior.predict_noise(latents, 501, views, make_condition(prompt="frown", guidance_scale=1.0))
    both = prior.predict_noise(latents, 501, views,
                               make_condition(prompt="smiling", negative_prompt="frown", guidance_scale=4.5))
    torch.testing.assert_close(both, unconditional + 4.5 * (conditional - unconditional), atol=1e-5, rtol=1e-4)
    assert not torch.allclose(conditional, unconditional, atol=1e-4)
    torch.testing.assert_close(guided(unconditional, conditional, 1.0), conditional)


def test_levels_are_diffusers_ddim_timesteps_and_descent_visits_them(tiny_model, make_views, make_condition):
    scheduler = DDIMScheduler.from_config(tiny_model.scheduler.config)
    scheduler.set_timesteps(100)
    levels = NoiseLevels(100, 1000)
    assert [levels.timestep(level) for level in range(100)] == scheduler.timesteps.tolist()
    stage_two = levels.descent(60, 40)  # published: one 40-step DDIM from level 60 to t=0
    assert len(stage_two) == 40 and stage_two[0] == 391 and stage_two[-1] == 1
    assert all(later < earlier for earlier, later in zip(stage_two, stage_two[1:]))

    prior = DiffusionPrior(tiny_model, levels=NoiseLevels(100, 1000))
    visited = []
    original = prior.predict_noise
    prior.predict_noise = lambda latents, timestep, *rest: visited.append(timestep) or original(latents, timestep, *rest)
    views = make_views(2)
    prior.denoise(_noisy(prior, views, level=95), views, make_condition(), steps=3)
    assert visited == levels.descent(95, 3) == [41, 21, 1]


def test_ddim_step_matches_diffusers_on_the_uniform_schedule(tiny_model):
    scheduler = DDIMScheduler.from_config(tiny_model.scheduler.config)
    scheduler.set_timesteps(100)
    generator = torch.Generator().manual_seed(0)
    sample, noise = torch.randn(2, 4, 8, 8, generator=generator), torch.randn(2, 4, 8, 8, generator=generator)
    alphas = scheduler.alphas_cumprod
    for timestep in scheduler.timesteps[:-1:17]:
        expected = scheduler.step(noise, timestep, sample).prev_sample
        ours = ddim_step(sample, noise, alphas[timestep], alphas[timestep - 10])
        torch.testing.assert_close(ours, expected, atol=1e-5, rtol=1e-5)


def test_deterministic_under_a_seed_and_counts_evaluations(tiny_model, make_views, make_condition):
    views, condition = make_views(3), make_condition(prompt="a man")
    prior = DiffusionPrior(tiny_model, chunk_size=2)
    first = prior.sample(views, condition, steps=2, generator=torch.Generator().manual_seed(7))
    again = prior.sample(views, condition, steps=2, generator=torch.Generator().manual_seed(7))
    other = prior.sample(views, condition, steps=2, generator=torch.Generator().manual_seed(8))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.shape == (3, 3, 64, 64) and 0 <= first.min() and first.max() <= 1

    one_step = prior.predict_clean(_noisy(prior, views), views, condition)
    assert one_step.shape == (3, 3, 64, 64)
    assert prior.evaluations.by_kind == {"sample": 3 * 2 * 3, "one-step": 3}  # 3 runs x 2 steps x 3 views
    assert prior.evaluations.total == 21


def test_per_view_prompts_and_multiple_references(tiny_model, make_views, make_condition):
    prior = DiffusionPrior(tiny_model, chunk_size=3)
    views = make_views(2)
    latents = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    condition = make_condition(references=2, prompt=["smiling", "crying"])
    mixed = prior.predict_noise(latents, 301, views, condition)
    for index, prompt in enumerate(["smiling", "crying"]):
        alone = prior.predict_noise(latents[index:index + 1], 301, views.subset([index]),
                                    make_condition(references=2, prompt=prompt))
        torch.testing.assert_close(mixed[index:index + 1], alone, atol=1e-5, rtol=1e-4)


def test_bad_input_is_refused_with_a_fix(tiny_model, make_views, make_condition):
    prior = DiffusionPrior(tiny_model)
    views = make_views(2)
    small = torch.rand(2, 3, 32, 32)
    with pytest.raises(JokerError, match="32x32 pixels but this prior works at 64x64"):
        prior.noise(small, 10)
    with pytest.raises(JokerError, match="normal maps are 32x32"):
        prior.predict_clean(_noisy(prior, views), type(views)(views.cameras, small), make_condition())
    with pytest.raises(JokerError, match="reference images are 32x32"):
        prior.predict_clean(_noisy(prior, views), views, Condition(torch.rand(1, 3, 32, 32)))
    with pytest.raises(JokerError, match="below 1"):
        make_condition(guidance_scale=0.5)
    with pytest.raises(JokerError, match="no usable reference"):
        Condition(torch.rand(0, 3, 64, 64))
    with pytest.raises(JokerError, match="3 prompts for 2 views"):
        prior.predict_clean(_noisy(prior, views), views, make_condition(prompt=["a", "b", "c"]))
    with pytest.warns(PromptTruncatedWarning, match="the rest is dropped"):
        prior.predict_clean(_noisy(prior, views), views, make_condition(prompt="very " * 40 + "angry"))

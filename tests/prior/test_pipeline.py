"""DiffusionPrior behind the Prior interface: cache, guidance, schedule, determinism, counting, bad input."""

from __future__ import annotations

import pytest
import torch
from diffusers import DDIMScheduler, PNDMScheduler

from joker.prior.base import Condition, NoiseLevels
from joker.prior.diffusion.ddim import ddim_step, guided
from joker.prior.diffusion.model import PromptTruncatedWarning
from joker.prior.diffusion.pipeline import DiffusionPrior
from joker.prior.diffusion.reference_cache import ReferenceCache
from joker_core.errors import JokerError

# Stable Diffusion 1.5's scheduler/scheduler_config.json, the authors' 2D sampler
SD15_PNDM = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                 set_alpha_to_one=False, skip_prk_steps=True, steps_offset=1, trained_betas=None)


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
    # 2 timesteps x (2 texts (prompt, negative) reference passes + that step's reference
    # latent draw), for 3 chunks: the uncached prior redoes them per chunk, the cached one never.
    assert cached.cache.misses == 2 * (2 + 1)
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


def test_descent_visits_the_truncated_ddim_timesteps(tiny_model, make_views, make_condition):
    levels = NoiseLevels(100, 1000)
    prior = DiffusionPrior(tiny_model, levels=levels)
    visited = []
    original = prior.predict_noise
    prior.predict_noise = lambda latents, timestep, *rest: visited.append(timestep) or original(latents, timestep, *rest)
    views = make_views(2)
    prior.denoise(_noisy(prior, views, level=95), views, make_condition(), steps=3)
    assert visited == levels.descent(95, 3) == [50, 33, 17]


def _recorded_noise(prior):
    """Wrap predict_noise so a test can replay the prior's own epsilons through diffusers."""
    calls = []
    original = prior.predict_noise

    def record(latents, timestep, *rest):
        noise = original(latents, timestep, *rest)
        calls.append((timestep, latents.clone(), noise))
        return noise
    prior.predict_noise = record
    return calls


def test_one_step_target_is_a_ddim_step_to_t0(tiny_model, make_views, make_condition):
    """Stage 1 as the authors: one TruncatedDDIM step t -> 0, i.e. diffusers' DDIMScheduler
    with one inference step, whose previous alpha is alphas_cumprod[0] (set_alpha_to_one=False)."""
    prior = DiffusionPrior(tiny_model)
    views = make_views(2)
    calls = _recorded_noise(prior)
    target = prior.predict_clean(_noisy(prior, views, level=30), views, make_condition(guidance_scale=2.0))
    (timestep, latents, noise), = calls
    assert timestep == 699
    scheduler = DDIMScheduler.from_config(tiny_model.scheduler.config)
    scheduler.set_timesteps(1)
    assert scheduler.final_alpha_cumprod == scheduler.alphas_cumprod[0]
    expected = scheduler.step(noise, timestep, latents).prev_sample
    torch.testing.assert_close(target, tiny_model.decode_latents(expected), atol=1e-5, rtol=1e-5)


def test_stage_two_descent_is_diffusers_ddim_down_to_alpha_0(tiny_model, make_views, make_condition):
    """Published stage 2: 40 steps 400, 390 ... 10, then to alpha_cumprod[0]; checked step
    for step against DDIMScheduler on a 4-step descent (spacing 100 = 10 inference steps)."""
    levels = NoiseLevels(100, 1000)
    assert levels.descent(60, 40) == list(range(400, 0, -10))
    prior = DiffusionPrior(tiny_model, levels=levels)
    views = make_views(1)
    calls = _recorded_noise(prior)
    noisy = _noisy(prior, views, level=60)
    target = prior.denoise(noisy, views, make_condition(), steps=4)
    assert [timestep for timestep, _, _ in calls] == [400, 300, 200, 100]
    scheduler = DDIMScheduler.from_config(tiny_model.scheduler.config)
    scheduler.set_timesteps(10)
    latents = noisy.sample
    for timestep, seen, noise in calls:
        torch.testing.assert_close(seen, latents, atol=1e-5, rtol=1e-5)
        latents = scheduler.step(noise, timestep, latents).prev_sample
    torch.testing.assert_close(target, tiny_model.decode_latents(latents), atol=1e-5, rtol=1e-5)


def test_sampling_is_diffusers_pndm_step_for_step(tiny_model, make_views, make_condition):
    prior = DiffusionPrior(tiny_model)
    views = make_views(2)
    calls = _recorded_noise(prior)
    images = prior.sample(views, make_condition(prompt="a man"), steps=4, generator=torch.Generator().manual_seed(3))
    scheduler = PNDMScheduler(**SD15_PNDM)
    scheduler.set_timesteps(4)
    assert [timestep for timestep, _, _ in calls] == scheduler.timesteps.tolist()
    latents = torch.randn(calls[0][1].shape, generator=torch.Generator().manual_seed(3))
    for timestep, seen, noise in calls:
        torch.testing.assert_close(seen, latents, atol=1e-5, rtol=1e-5)
        latents = scheduler.step(noise, timestep, latents).prev_sample
    torch.testing.assert_close(images, tiny_model.decode_latents(latents), atol=1e-5, rtol=1e-5)
    assert prior.evaluations.by_kind == {"sample": 2 * len(scheduler.timesteps)}
    with pytest.raises(JokerError, match="unknown sampler"):
        prior.sample(views, make_condition(), steps=2, sampler="euler")


def test_reference_latent_is_drawn_per_step_or_the_mean(tiny_model, make_views, make_condition):
    views, condition = make_views(1), make_condition()
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    drawn = DiffusionPrior(tiny_model)
    mean = DiffusionPrior(tiny_model, vae_latents="mean")
    at_300 = drawn.predict_noise(latents, 300, views, condition)
    assert torch.equal(at_300, DiffusionPrior(tiny_model).predict_noise(latents, 300, views, condition))
    assert not torch.allclose(at_300, mean.predict_noise(latents, 300, views, condition), atol=1e-6)
    keys = [key for key in drawn.cache._entries if "latents" in key]
    drawn.predict_noise(latents, 290, views, condition)
    assert len([key for key in drawn.cache._entries if "latents" in key]) == len(keys) + 1


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
    # 3 runs x 3 views x 3 PNDM evaluations for 2 steps (PLMS repeats one timestep)
    assert prior.evaluations.by_kind == {"sample": 3 * 3 * 3, "one-step": 3}
    assert prior.evaluations.total == 30


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

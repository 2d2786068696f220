"""One noise schedule for every prior: pixel-space priors noise exactly as SD1.5's DDIM."""

import torch
from diffusers import DDIMScheduler

from joker.prior.base import NoiseLevels, noise_pixels
from joker.prior.diffusion.tiny import SD15_SCHEDULER


def test_alpha_cumprod_is_sd15s_schedule_at_every_level():
    scheduler = DDIMScheduler(**SD15_SCHEDULER)
    scheduler.set_timesteps(100)
    levels = NoiseLevels()
    for level, timestep in enumerate(scheduler.timesteps.tolist()):
        assert levels.timestep(level) == timestep
        assert torch.isclose(levels.alpha_cumprod(level), scheduler.alphas_cumprod[timestep].float(), rtol=1e-6)


def test_pixel_noise_keeps_signal_at_low_noise_and_destroys_it_at_high_noise():
    levels = NoiseLevels()
    images = torch.rand(2, 3, 16, 16)
    generator = torch.Generator().manual_seed(0)
    clean_end = noise_pixels(levels, images, levels.count - 1, generator).sample
    noisy_start = noise_pixels(levels, images, 0, generator).sample
    target = images * 2 - 1
    assert (clean_end - target).abs().mean() < 0.05
    assert torch.corrcoef(torch.stack([noisy_start.flatten(), target.flatten()]))[0, 1] < 0.2

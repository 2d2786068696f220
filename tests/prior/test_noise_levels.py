"""One noise schedule for every prior: pixel-space priors noise exactly as SD1.5's DDIM, at the authors' truncated DDIM levels."""

import numpy as np
import torch
from diffusers import DDIMScheduler

from joker.prior.base import NoiseLevels, noise_pixels
from tiny_prior import SD15_SCHEDULER


def test_levels_are_the_authors_truncated_ddim_on_sd15s_schedule():
    """TruncatedDDIMScheduler.set_timesteps(100): round(linspace(999, 0, 101)[:100]); level 60 is t=400."""
    levels = NoiseLevels()
    authors = np.linspace(999, 0, 101)[:100].round().astype(int).tolist()
    assert [levels.timestep(level) for level in range(100)] == authors
    assert authors[:2] == [999, 989] and authors[59:61] == [410, 400] and authors[-1] == 10
    scheduler = DDIMScheduler(**SD15_SCHEDULER)
    for level, timestep in enumerate(authors):
        assert torch.isclose(levels.alpha_cumprod(level), scheduler.alphas_cumprod[timestep].float(), rtol=1e-6)
    assert levels.descent(60, 1) == [400]  # a stage-1 target: one step from the level's timestep
    assert levels.descent(99, 40) == list(range(10, 0, -1))  # never more steps than timesteps left


def test_pixel_noise_keeps_signal_at_low_noise_and_destroys_it_at_high_noise():
    levels = NoiseLevels()
    images = torch.rand(2, 3, 16, 16)
    generator = torch.Generator().manual_seed(0)
    clean_end = noise_pixels(levels, images, levels.count - 1, generator).sample
    noisy_start = noise_pixels(levels, images, 0, generator).sample
    target = images * 2 - 1
    assert (clean_end - target).abs().mean() < 0.1  # t=10: sqrt(1 - alpha) = 0.09
    assert torch.corrcoef(torch.stack([noisy_start.flatten(), target.flatten()]))[0, 1] < 0.2

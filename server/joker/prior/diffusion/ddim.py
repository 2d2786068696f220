"""Deterministic DDIM (eta = 0) on epsilon predictions, between any two timesteps.

diffusers' DDIMScheduler.step assumes evenly spaced steps over the whole schedule; the
truncated descents of the distillation start mid-schedule, so the update is spelled out
here on the scheduler's own alphas_cumprod.
"""

from __future__ import annotations

import torch


def predicted_clean(sample: torch.Tensor, noise: torch.Tensor, alpha_cumprod: torch.Tensor) -> torch.Tensor:
    """x0 = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t)."""
    return (sample - (1 - alpha_cumprod).sqrt() * noise) / alpha_cumprod.sqrt()


def ddim_step(sample: torch.Tensor, noise: torch.Tensor, alpha_cumprod: torch.Tensor,
              alpha_cumprod_next: torch.Tensor) -> torch.Tensor:
    """x_t -> x_s for s < t: the predicted x0 re-noised along the predicted epsilon."""
    clean = predicted_clean(sample, noise, alpha_cumprod)
    return alpha_cumprod_next.sqrt() * clean + (1 - alpha_cumprod_next).sqrt() * noise


def guided(unconditional: torch.Tensor, conditional: torch.Tensor, scale: float) -> torch.Tensor:
    """Classifier-free guidance: eps_u + s * (eps_c - eps_u)."""
    return unconditional + scale * (conditional - unconditional)

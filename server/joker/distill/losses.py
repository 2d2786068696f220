"""Losses of the distillation: photometric (L1, SSIM, LPIPS where its weights are on disk),
sparsity of the accumulated opacity, and weak geometric supervision from the rig: its
silhouette and its depth (rig_views.py), a solid inside and empty free space around it
(rig_space.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from joker_core.errors import JokerError


@dataclass(frozen=True)
class LossWeights:
    l1: float = 1.0
    ssim: float = 0.0
    lpips: float = 0.0      # used only when LPIPS weights exist locally (see lpips.py)
    sparsity: float = 1e-6
    mask: float = 0.0       # opacity vs the rig's silhouette (normal maps' foreground, rig views)
    depth: float = 0.0      # rendered vs rig distance on the rig views' head pixels
    interior: float = 0.0   # density inside the rig, behind every view's surface (rig_space.py)
    free: float = 0.0       # density in free space near the rig that some view sees through

    def __post_init__(self):
        weights = (self.l1, self.ssim, self.lpips, self.sparsity, self.mask, self.depth, self.interior, self.free)
        if min(weights) < 0:
            raise JokerError(f"negative loss weight in {self}", "use loss weights >= 0")


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-x ** 2 / (2 * sigma ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM of P x 3 x h x w images in [0, 1] (Gaussian window 11, sigma 1.5,
    narrowed for patches smaller than the window)."""
    size = min(11, a.shape[-1], a.shape[-2])
    size -= 1 - size % 2  # odd
    window = _gaussian_window(size, 1.5, a.device)

    def blur(x):
        return F.conv2d(x, window, groups=3)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    score = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return score.mean()


def sparsity(opacity: torch.Tensor) -> torch.Tensor:
    """Pushes accumulated opacity toward 0 or 1 with a preference for empty (smooth L1-ish)."""
    return torch.sqrt(opacity ** 2 + 0.01).mean()


def mask_loss(opacity: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy(opacity.clamp(1e-5, 1 - 1e-5), mask)


def depth_loss(rendered: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute distance error over the rays that hit the rig (0 if none does)."""
    return ((rendered - target).abs() * mask).sum() / mask.sum().clamp_min(1.0)


def interior_loss(density: torch.Tensor, solid: float) -> torch.Tensor:
    """How far densities fall short of `solid` (relative); denser costs nothing."""
    return F.relu(1.0 - density / solid).mean()


def free_loss(density: torch.Tensor, solid: float) -> torch.Tensor:
    """Density where there should be none, relative to `solid`."""
    return (density / solid).mean()


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]."""
    mse = F.mse_loss(a, b).item()
    return float("inf") if mse == 0 else -10.0 * torch.log10(torch.tensor(mse)).item()

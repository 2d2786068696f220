"""A test oracle prior: a textured ellipsoid "head" whose every view it knows exactly.

It answers the prior interface like a perfect denoiser (the clean image of the view, whatever
the noise), counts evaluations as a real prior would, and logs each call, so tests and
benchmarks can check the distillation schedule and measure fidelity on held-out views.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from joker_core.cameras import Camera
from joker_core.conventions import encode_normals

from .base import Condition, EvaluationCounter, NoiseLevels, Noisy, Prior, Views


@dataclass(frozen=True)
class OracleCall:
    kind: str       # "predict_clean", "denoise" or "sample"
    level: int      # the noise level it started from (-1 for sampling from pure noise)
    steps: int      # prior steps per view
    views: int


def sd_alphas_cumprod(train_timesteps: int = 1000) -> torch.Tensor:
    """SD1.5's "scaled_linear" noise schedule (beta 0.00085 .. 0.012)."""
    betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0)


@dataclass
class EllipsoidOracle(Prior):
    """Ellipsoid with a smooth colour pattern and fixed (world-space) shading in front of a
    plain background. All lengths in metres, FLAME frame."""

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radii: tuple[float, float, float] = (0.08, 0.11, 0.095)
    pattern_frequency: float = 3.0
    background: tuple[float, float, float] = (0.85, 0.85, 0.85)
    levels: NoiseLevels = field(default_factory=NoiseLevels)
    evaluations: EvaluationCounter = field(default_factory=EvaluationCounter)
    calls: list[OracleCall] = field(default_factory=list)

    def render(self, cameras: Sequence[Camera]) -> tuple[torch.Tensor, torch.Tensor]:
        """(images V x 3 x H x W in [0, 1], normal maps V x 3 x H x W as encode_normals/255)."""
        images, normal_maps = zip(*(self._render_one(camera) for camera in cameras))
        return torch.stack(images), torch.stack(normal_maps)

    def views(self, cameras: Sequence[Camera]) -> Views:
        return Views(list(cameras), self.render(cameras)[1])

    def noise(self, images: torch.Tensor, level: int, generator: torch.Generator | None = None) -> Noisy:
        alpha = sd_alphas_cumprod(self.levels.train_timesteps)[self.levels.timestep(level)].float()
        eps = torch.randn(images.shape, generator=generator).to(images.device)
        return Noisy(alpha.sqrt() * (images * 2 - 1) + (1 - alpha).sqrt() * eps, level)

    def predict_clean(self, noisy: Noisy, views: Views, condition: Condition) -> torch.Tensor:
        return self._answer("predict_clean", noisy.level, 1, views)

    def denoise(self, noisy: Noisy, views: Views, condition: Condition, steps: int) -> torch.Tensor:
        return self._answer("denoise", noisy.level, len(self.levels.descent(noisy.level, steps)), views)

    def sample(self, views: Views, condition: Condition, steps: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        return self._answer("sample", -1, steps, views)

    def _answer(self, kind: str, level: int, steps: int, views: Views) -> torch.Tensor:
        self.evaluations.add(kind, len(views), steps)
        self.calls.append(OracleCall(kind, level, steps, len(views)))
        return self.render(views.cameras)[0].to(views.normal_maps.device)

    def _render_one(self, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = np.mgrid[0:camera.height, 0:camera.width] + 0.5
        local = np.stack([(cols - camera.cx) / camera.fx, -(rows - camera.cy) / camera.fy,
                          -np.ones_like(cols)], -1).reshape(-1, 3)
        directions = local @ camera.c2w[:3, :3].T
        directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
        radii = np.asarray(self.radii)
        # Intersect in the frame where the ellipsoid is the unit sphere.
        origin = (camera.c2w[:3, 3] - np.asarray(self.center)) / radii
        scaled = directions / radii
        a = (scaled ** 2).sum(-1)
        b = 2.0 * scaled @ origin
        c = origin @ origin - 1.0
        disc = b * b - 4 * a * c
        hit = disc > 0
        t = (-b - np.sqrt(np.where(hit, disc, 0.0))) / (2 * a)
        hit &= t > 0
        unit = origin + t[:, None] * scaled
        normals = unit / radii
        normals /= np.linalg.norm(normals, axis=-1, keepdims=True)
        rgb = np.broadcast_to(np.asarray(self.background), unit.shape).copy()
        rgb[hit] = self._surface_color(unit[hit], normals[hit])
        camera_normals = normals @ camera.c2w[:3, :3]  # world -> camera: multiply by R^T
        shape = (camera.height, camera.width)
        normal_map = encode_normals(camera_normals.reshape(*shape, 3), hit.reshape(shape))
        return (torch.from_numpy(rgb.reshape(*shape, 3)).permute(2, 0, 1).float(),
                torch.from_numpy(normal_map).permute(2, 0, 1).float() / 255.0)

    def _surface_color(self, unit_points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        phase = np.array([0.0, 2.1, 4.2])
        albedo = 0.5 + 0.35 * np.sin(self.pattern_frequency * unit_points + phase)
        light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
        shading = 0.55 + 0.45 * np.clip(normals @ light, 0.0, 1.0)
        return albedo * shading[:, None]

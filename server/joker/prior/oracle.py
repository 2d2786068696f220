"""Test oracle priors: a known coloured shape whose every view they render exactly, either
analytically (EllipsoidOracle) or with the torch rasterizer (MeshOracle, any coloured mesh).

They answer the prior interface like a perfect denoiser (the clean image of the view,
whatever the noise), count evaluations as a real prior would, and log each call, so tests
and benchmarks can check the distillation schedule and measure fidelity on held-out views.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from joker_core.cameras import Camera
from joker_core.conventions import encode_normals

from ..render.normal_maps import vertex_normals
from ..render.raster import interpolate, rasterize, world_to_camera
from .base import Condition, EvaluationCounter, NoiseLevels, Noisy, Prior, ViewRenderer, Views, noise_pixels


@dataclass(frozen=True)
class OracleCall:
    kind: str       # "predict_clean", "denoise" or "sample"
    level: int      # the noise level it started from (-1 for sampling from pure noise)
    steps: int      # prior steps per view
    views: int


@dataclass(kw_only=True)
class OraclePrior(Prior):
    """A prior that knows the answer: subclasses say how a view of their shape looks."""

    levels: NoiseLevels = field(default_factory=NoiseLevels)
    evaluations: EvaluationCounter = field(default_factory=EvaluationCounter)
    calls: list[OracleCall] = field(default_factory=list)

    @abc.abstractmethod
    def render(self, cameras: Sequence[Camera]) -> tuple[torch.Tensor, torch.Tensor]:
        """(images V x 3 x H x W in [0, 1], normal maps V x 3 x H x W as encode_normals/255)."""

    def views(self, cameras: Sequence[Camera]) -> Views:
        return Views(list(cameras), self.render(cameras)[1])

    @property
    def view_renderer(self) -> ViewRenderer:
        return lambda vertices, cameras: self.render(cameras)[0]  # an oracle's shape is its own

    def noise(self, images: torch.Tensor, level: int, generator: torch.Generator | None = None) -> Noisy:
        return noise_pixels(self.levels, images, level, generator)

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


@dataclass(kw_only=True)
class EllipsoidOracle(OraclePrior):
    """Ellipsoid with a smooth colour pattern and fixed (world-space) shading in front of a
    plain background. All lengths in metres, FLAME frame."""

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    radii: tuple[float, float, float] = (0.08, 0.11, 0.095)
    pattern_frequency: float = 3.0
    background: tuple[float, float, float] = (0.85, 0.85, 0.85)

    def render(self, cameras: Sequence[Camera]) -> tuple[torch.Tensor, torch.Tensor]:
        images, normal_maps = zip(*(self._render_one(camera) for camera in cameras))
        return torch.stack(images), torch.stack(normal_maps)

    def surface_color(self, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        """Colour of surface points (world) with their unit normals: albedo times shading."""
        unit_points = (points - np.asarray(self.center)) / np.asarray(self.radii)
        phase = np.array([0.0, 2.1, 4.2])
        albedo = 0.5 + 0.35 * np.sin(self.pattern_frequency * unit_points + phase)
        light = np.array([0.3, 0.5, 0.8]) / np.linalg.norm([0.3, 0.5, 0.8])
        shading = 0.55 + 0.45 * np.clip(normals @ light, 0.0, 1.0)
        return albedo * shading[:, None]

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
        rgb[hit] = self.surface_color(unit[hit] * radii + np.asarray(self.center), normals[hit])
        camera_normals = normals @ camera.c2w[:3, :3]  # world -> camera: multiply by R^T
        shape = (camera.height, camera.width)
        normal_map = encode_normals(camera_normals.reshape(*shape, 3), hit.reshape(shape))
        return (torch.from_numpy(rgb.reshape(*shape, 3)).permute(2, 0, 1).float(),
                torch.from_numpy(normal_map).permute(2, 0, 1).float() / 255.0)


@dataclass(kw_only=True)
class MeshOracle(OraclePrior):
    """A mesh with per-vertex colours (world, metres) in front of a plain background,
    rendered with joker.render's rasterizer."""

    vertices: torch.Tensor  # V x 3
    faces: torch.Tensor     # F x 3
    colors: torch.Tensor    # V x 3 in [0, 1]
    background: tuple[float, float, float] = (0.85, 0.85, 0.85)

    def render(self, cameras: Sequence[Camera]) -> tuple[torch.Tensor, torch.Tensor]:
        faces = self.faces.long()
        images, normal_maps = [], []
        for camera in cameras:
            vertices = world_to_camera(self.vertices.float(), camera)
            fragments = rasterize(vertices, faces, camera)
            mask = fragments.mask[..., None]
            colors = interpolate(self.colors.float(), faces, fragments)
            background = colors.new_tensor(self.background).expand_as(colors)
            images.append(torch.where(mask, colors, background).permute(2, 0, 1).cpu())
            normals = interpolate(vertex_normals(vertices, faces), faces, fragments)
            encoded = encode_normals(normals.cpu().numpy(), fragments.mask.cpu().numpy())
            normal_maps.append(torch.from_numpy(encoded).permute(2, 0, 1).float() / 255.0)
        return torch.stack(images), torch.stack(normal_maps)

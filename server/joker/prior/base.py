"""What the distillation asks of a 2D prior, whatever it is made of.

A prior turns renders of the 3D head into targets. The distillation noises renders at a
level of the DDIM schedule, then asks for the clean image in ONE step (stage 1) or by
truncated k-step DDIM down to t=0 (stage 2). Images cross this boundary as float RGB in
[0, 1], V x 3 x H x W; what a prior does inside (latents, CFG, chunking) is its own affair.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch

from joker_core.cameras import Camera
from joker_core.errors import JokerError


@dataclass(frozen=True)
class NoiseLevels:
    """The DDIM levels: `count` inference steps over `train_timesteps` training timesteps,
    spaced as SD1.5's DDIMScheduler does ("leading", offset 1). Level 0 is the noisiest;
    the published schedule is NoiseLevels(100, 1000): level 60 is t=391."""

    count: int = 100
    train_timesteps: int = 1000

    def __post_init__(self):
        if not 1 <= self.count <= self.train_timesteps:
            raise JokerError(f"{self.count} noise levels over {self.train_timesteps} timesteps is impossible",
                             "use between 1 and train_timesteps levels")

    def timestep(self, level: int) -> int:
        if not 0 <= level < self.count:
            raise JokerError(f"noise level {level} is outside 0..{self.count - 1}",
                             "pick a level of the schedule")
        return (self.count - 1 - level) * (self.train_timesteps // self.count) + 1

    def descent(self, level: int, steps: int) -> list[int]:
        """The timesteps of a truncated `steps`-step DDIM from `level` down to the last
        level, evenly spaced over the remaining levels (published: 40 steps from level 60)."""
        if steps < 1:
            raise JokerError("a DDIM descent needs at least one step", "use steps >= 1")
        remaining = self.count - level
        levels = np.linspace(level, self.count - 1, min(steps, remaining)).round().astype(int)
        return [self.timestep(int(l)) for l in levels]

    def alpha_cumprod(self, level: int) -> torch.Tensor:
        """Signal fraction at `level` on SD1.5's schedule ("scaled_linear" betas from
        0.00085 to 0.012), so a level means the same noise in every prior."""
        betas = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, self.train_timesteps, dtype=torch.float64) ** 2
        return torch.cumprod(1.0 - betas, 0)[self.timestep(level)].float()


def noise_pixels(levels: NoiseLevels, images: torch.Tensor, level: int,
                 generator: torch.Generator | None = None) -> Noisy:
    """The forward diffusion process in pixel space ([-1, 1]), for priors without latents."""
    alpha = levels.alpha_cumprod(level)
    eps = torch.randn(images.shape, generator=generator).to(images.device)
    return Noisy(alpha.sqrt() * (images * 2 - 1) + (1 - alpha).sqrt() * eps, level)


@dataclass
class Noisy:
    """Renders noised to one level, in the prior's own space (pixels or latents)."""

    sample: torch.Tensor
    level: int


@dataclass
class Views:
    """The views to predict: one camera and one normal map of the posed rig per view."""

    cameras: Sequence[Camera]
    normal_maps: torch.Tensor  # V x 3 x H x W in [0, 1], encoded as conventions.encode_normals / 255
    # V x 1 x H x W full-head silhouettes of the posed rig, for geometric supervision; when
    # absent they are read off the normal maps, which in "face" mode show only the face.
    silhouettes: torch.Tensor | None = None

    def __post_init__(self):
        if self.normal_maps.ndim != 4 or self.normal_maps.shape[1] != 3:
            raise JokerError(f"normal maps must be V x 3 x H x W, got {tuple(self.normal_maps.shape)}",
                             "pass one RGB normal map per view")
        if len(self.cameras) != self.normal_maps.shape[0]:
            raise JokerError(f"{len(self.cameras)} cameras for {self.normal_maps.shape[0]} normal maps",
                             "pass exactly one camera per normal map")
        expected = (self.normal_maps.shape[0], 1, *self.normal_maps.shape[2:])
        if self.silhouettes is not None and tuple(self.silhouettes.shape) != expected:
            raise JokerError(f"silhouettes are {tuple(self.silhouettes.shape)}, expected {expected}",
                             "pass one 1-channel silhouette per view, at the normal maps' size")

    def __len__(self) -> int:
        return len(self.cameras)

    def foreground(self) -> torch.Tensor:
        """V x 1 x H x W float: the silhouettes, or the normal maps' non-background pixels."""
        if self.silhouettes is not None:
            return self.silhouettes.float()
        return self.normal_maps.amax(1, keepdim=True).gt(0).float()

    def subset(self, index: Sequence[int]) -> "Views":
        index = list(index)
        return Views([self.cameras[i] for i in index], self.normal_maps[index],
                     None if self.silhouettes is None else self.silhouettes[index])


@dataclass
class Condition:
    """What the result should look like: who (reference photo), how (prompt), and, for
    priors that render the rig themselves, the posed rig's vertices (same topology as the
    head model the prior was built with, FLAME frame)."""

    reference: torch.Tensor  # R x 3 x H x W in [0, 1]
    prompt: str | Sequence[str] = ""
    negative_prompt: str = ""
    guidance_scale: float = 3.0
    rig_vertices: torch.Tensor | None = None

    def __post_init__(self):
        if self.reference.ndim != 4 or self.reference.shape[0] < 1 or self.reference.shape[1] != 3:
            raise JokerError("no usable reference image (expected R x 3 x H x W, R >= 1)",
                             "give at least one RGB reference photo")
        if self.guidance_scale < 1.0:
            raise JokerError(f"guidance scale {self.guidance_scale} is below 1",
                             "use a CFG scale >= 1 (1 disables guidance)")


@dataclass
class EvaluationCounter:
    """Prior evaluations: one per view per denoising step (a CFG pair counts once, as in
    the published cost figure)."""

    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, views: int, steps: int = 1) -> None:
        self.total += views * steps
        self.by_kind[kind] = self.by_kind.get(kind, 0) + views * steps


# (posed head vertices N x 3 in the FLAME frame, cameras) -> V x 3 x H x W in [0, 1]: the
# prior's exact answer for any view of the head, without noise or sampling.
ViewRenderer = Callable[[torch.Tensor, Sequence[Camera]], torch.Tensor]


class Prior(abc.ABC):
    """A 2D prior. Deterministic under the generator it is given."""

    levels: NoiseLevels
    evaluations: EvaluationCounter

    @property
    def view_renderer(self) -> ViewRenderer | None:
        """How any view of the head looks to this prior, for priors that know it exactly
        (the projection prior, test oracles); None for a generative prior (diffusion).
        With it, a job supervises views no target covers (the back of the head) and
        measures held-out fidelity."""
        return None

    @abc.abstractmethod
    def noise(self, images: torch.Tensor, level: int, generator: torch.Generator | None = None) -> Noisy:
        """Noise V x 3 x H x W images in [0, 1] to `level` of the schedule."""

    @abc.abstractmethod
    def predict_clean(self, noisy: Noisy, views: Views, condition: Condition) -> torch.Tensor:
        """The clean images predicted in ONE step from `noisy` (stage-1 targets)."""

    @abc.abstractmethod
    def denoise(self, noisy: Noisy, views: Views, condition: Condition, steps: int) -> torch.Tensor:
        """Truncated DDIM from `noisy.level` to t=0 in `steps` steps (stage-2 targets)."""

    @abc.abstractmethod
    def sample(self, views: Views, condition: Condition, steps: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Plain 2D sampling from pure noise."""

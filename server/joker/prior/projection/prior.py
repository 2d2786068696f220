"""The weight-free projection prior: the reference photo projected onto the rig.

Built once from the photo (alignment -> texture on the neutral head), it answers every
request by rendering the requested expression (`Condition.rig_vertices`, same topology)
from each view's camera with that texture.

Semantics against the prior interface: it is a perfect denoiser of its own renders.
`noise` is the DDPM forward process of SD1.5's schedule in pixel space ([-1, 1]);
`predict_clean` returns the render whatever the noise (the exact clean image of an oracle
that knows the answer); `denoise` returns the render too, since a DDIM trajectory driven by
an exact clean-image predictor lands on that image in any number of steps; `sample`
likewise. The noisy input is therefore ignored, the reference and prompt in the Condition
are not used (the prior was built from its photo), and evaluations are counted as a real
prior would spend them, so schedules can be costed and fidelity measured against it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from joker.render.raster import rasterize, world_to_camera
from joker_core.cameras import Camera
from joker_core.errors import JokerError
from joker_core.head_model import HeadModel

from ..base import Condition, EvaluationCounter, NoiseLevels, Noisy, Prior, ViewRenderer, Views, noise_pixels
from .alignment import Alignment, AlignmentHints, align_photo, rig_landmarks
from .head_surface import surface_from_head
from .photo import PhotoSource, load_photo
from .texture import HeadTexture, ShadingTables, Surface, bake_texture, resized_camera

if TYPE_CHECKING:
    from joker.fit.solve import ReferenceFit

log = logging.getLogger(__name__)


@dataclass
class ProjectionPrior(Prior):
    surface: Surface
    texture: HeadTexture
    background: tuple[float, float, float] = (1.0, 1.0, 1.0)
    alignment: Alignment | None = None
    fit: "ReferenceFit | None" = None  # the rig fitted to the photo, when the prior was built from one
    levels: NoiseLevels = field(default_factory=NoiseLevels)
    evaluations: EvaluationCounter = field(default_factory=EvaluationCounter)
    _tables: dict[torch.device, ShadingTables] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    def from_photo(cls, photo: PhotoSource, head: HeadModel, neutral_vertices: np.ndarray | None = None,
                   hints: AlignmentHints = AlignmentHints(), texture_size: int = 512,
                   **options) -> "ProjectionPrior":
        """Align `photo` to the head (its neutral shape, `v_template` unless given) and
        bake the texture. `options` go to the dataclass (background, levels)."""
        rgb = load_photo(photo)
        surface = surface_from_head(head, neutral_vertices)
        if surface.uv_coords is None:
            log.warning("head model '%s' has no UV layout: the projection prior colours its "
                        "vertices instead of a texture, so detail is limited to the mesh "
                        "resolution", head.name)
        alignment = align_photo(rgb, rig_landmarks(head, surface.vertices), hints)
        texture = bake_texture(surface, rgb, alignment.camera, texture_size,
                               alignment.face.contains if alignment.face else None)
        return cls(surface, texture, alignment=alignment, **options)

    @property
    def view_renderer(self) -> ViewRenderer:
        return self.render

    @classmethod
    def from_fit(cls, photo: PhotoSource, head: HeadModel, fit: "ReferenceFit", texture_size: int = 512,
                 **options) -> "ProjectionPrior":
        """Colours projected onto the head posed as the photo shows the person (fitted
        shape, the photo's expression and jaw, its camera), only from the pixels that show
        the person (the foreground); rendered later in any expression with the same shape.
        The whole head may take photo colour (hair colours the scalp), since background
        pixels never reach it."""
        from joker.fit.foreground import foreground_mask, sampler
        from joker.fit.solve import fitted_vertices

        rgb = load_photo(photo)
        surface = replace(surface_from_head(head, fitted_vertices(head, fit)), trusted_vertices=None)
        person = foreground_mask(rgb, head, fit)
        texture = bake_texture(surface, rgb, fit.camera, texture_size, sampler(person))
        return cls(surface, texture, fit=fit, **options)

    def render(self, vertices: torch.Tensor | np.ndarray, cameras: Sequence[Camera],
               size: tuple[int, int] | None = None) -> torch.Tensor:
        """V x 3 x H x W renders of the posed head (N x 3, FLAME frame) from `cameras`,
        at `size` (height, width) when given, else each camera's own size, on the
        vertices' device."""
        vertices = self._checked_vertices(vertices)
        tables = self._tables_on(vertices.device)
        background = torch.tensor(self.background, dtype=torch.float32, device=vertices.device)
        images = []
        for camera in cameras:
            if size is not None:
                camera = resized_camera(camera, size[1], size[0])
            fragments = rasterize(world_to_camera(vertices, camera), tables.faces, camera)
            image = torch.where(fragments.mask[..., None], tables.shade(fragments), background)
            images.append(image.permute(2, 0, 1))
        return torch.stack(images)

    def noise(self, images: torch.Tensor, level: int, generator: torch.Generator | None = None) -> Noisy:
        return noise_pixels(self.levels, images, level, generator)

    def predict_clean(self, noisy: Noisy, views: Views, condition: Condition) -> torch.Tensor:
        return self._answer("predict_clean", 1, views, condition)

    def denoise(self, noisy: Noisy, views: Views, condition: Condition, steps: int) -> torch.Tensor:
        return self._answer("denoise", len(self.levels.descent(noisy.level, steps)), views, condition)

    def sample(self, views: Views, condition: Condition, steps: int,
               generator: torch.Generator | None = None) -> torch.Tensor:
        return self._answer("sample", steps, views, condition)

    def _answer(self, kind: str, steps: int, views: Views, condition: Condition) -> torch.Tensor:
        if condition.rig_vertices is None:
            raise JokerError("the projection prior renders the rig, but no rig vertices were given",
                             "pass the posed rig as Condition.rig_vertices")
        device = views.normal_maps.device
        images = self.render(torch.as_tensor(condition.rig_vertices).to(device), views.cameras,
                             tuple(views.normal_maps.shape[-2:]))
        self.evaluations.add(kind, len(views), steps)
        return images

    def _tables_on(self, device: torch.device) -> ShadingTables:
        if device not in self._tables:
            self._tables[device] = ShadingTables.build(self.texture, self.surface, device)
        return self._tables[device]

    def _checked_vertices(self, vertices: torch.Tensor | np.ndarray) -> torch.Tensor:
        vertices = torch.as_tensor(vertices, dtype=torch.float32)
        if vertices.ndim == 3 and vertices.shape[0] == 1:
            vertices = vertices[0]
        expected = len(self.surface.vertices)
        if vertices.shape != (expected, 3):
            raise JokerError(f"the rig vertices have shape {tuple(vertices.shape)}, but the projection "
                             f"prior was built for a head with {expected} vertices",
                             "pose the same head model the prior was built from")
        return vertices

"""The Joker diffusion prior behind the distillation's Prior interface.

Renders live in the VAE's latent space between calls (`Noisy.sample` holds latents). Every
denoising step runs the ControlNet and the denoising UNet per view, in chunks; the
reference UNet runs once per (reference, timestep, text) and is reused through the cache.
Guidance is on text only: both halves see the same reference and normal map, the
unconditional half the negative prompt (the reference UNet sees each half's text, as in
the published code).

As the authors' code does, VAE latents are draws from the posterior: the renders' with the
generator `noise` is given, the reference's a new one at every denoising step (here: one
per timestep and seed, so a timestep's reference features are still computed once for all
views and chunks); `vae_latents="mean"` uses the posterior means instead. Distillation descends by the authors' truncated DDIM
(NoiseLevels); plain 2D sampling uses PNDM with SD1.5's scheduler config, as their
inference code does, or DDIM on request.
"""

from __future__ import annotations

from typing import Sequence

import torch
from diffusers import PNDMScheduler
from diffusers.utils.torch_utils import randn_tensor

from joker_core.errors import JokerError

from ..base import Condition, EvaluationCounter, NoiseLevels, Noisy, Prior, Views
from .ddim import ddim_step, guided
from .model import JokerPriorModel
from .reference_attention import ReferenceFeatures
from .reference_cache import ReferenceCache, tensor_digest


SAMPLERS = ("pndm", "ddim")
VAE_LATENTS = ("sample", "mean")


class DiffusionPrior(Prior):
    def __init__(self, model: JokerPriorModel, levels: NoiseLevels | None = None, chunk_size: int = 8,
                 cache: ReferenceCache | None = None, vae_latents: str = "sample", seed: int = 0) -> None:
        if chunk_size < 1:
            raise JokerError(f"chunk size {chunk_size} is not positive", "use a chunk size >= 1")
        if vae_latents not in VAE_LATENTS:
            raise JokerError(f"unknown VAE latents {vae_latents!r}", f"use one of {', '.join(VAE_LATENTS)}")
        self.vae_latents, self.seed = vae_latents, seed
        self.model = model.eval()
        self.levels = levels or NoiseLevels(100, model.scheduler.config.num_train_timesteps)
        self.chunk_size = chunk_size
        self.cache = cache if cache is not None else ReferenceCache()
        self.evaluations = EvaluationCounter()

    @torch.no_grad()
    def noise(self, images: torch.Tensor, level: int, generator: torch.Generator | None = None) -> Noisy:
        self._check_size(images, "images to noise")
        timestep = self.levels.timestep(level)
        draw = generator if self.vae_latents == "sample" else None
        latents = torch.cat([self.model.encode_images(chunk, generator=draw) for chunk in images.split(self.chunk_size)])
        noise = randn_tensor(latents.shape, generator=generator, device=latents.device, dtype=latents.dtype)
        timesteps = torch.full((len(latents),), timestep, device=latents.device)
        return Noisy(self.model.scheduler.add_noise(latents, noise, timesteps), level)

    @torch.no_grad()
    def predict_clean(self, noisy: Noisy, views: Views, condition: Condition) -> torch.Tensor:
        return self._descend(noisy.sample, noisy.level, views, condition, 1, "one-step")

    @torch.no_grad()
    def denoise(self, noisy: Noisy, views: Views, condition: Condition, steps: int) -> torch.Tensor:
        return self._descend(noisy.sample, noisy.level, views, condition, steps, "k-step")

    @torch.no_grad()
    def sample(self, views: Views, condition: Condition, steps: int,
               generator: torch.Generator | None = None, sampler: str = "pndm") -> torch.Tensor:
        """From pure noise: PNDM over SD1.5's schedule (the authors' 2D sampler) or DDIM."""
        if sampler not in SAMPLERS:
            raise JokerError(f"unknown sampler {sampler!r}", f"use one of {', '.join(SAMPLERS)}")
        unet = self.model.unet.config
        shape = (len(views), unet.in_channels, unet.sample_size, unet.sample_size)
        latents = randn_tensor(shape, generator=generator, device=self.model.device, dtype=self.model.dtype)
        if sampler == "ddim":
            return self._descend(latents, 0, views, condition, steps, "sample")
        scheduler = pndm_scheduler(self.model.scheduler.config)
        scheduler.set_timesteps(steps, device=latents.device)
        for timestep in scheduler.timesteps.tolist():
            noise = self.predict_noise(latents, timestep, views, condition)
            latents = scheduler.step(noise, timestep, latents).prev_sample
        self.evaluations.add("sample", len(views), len(scheduler.timesteps))
        return self._decode(latents)

    def _descend(self, latents: torch.Tensor, level: int, views: Views, condition: Condition, steps: int,
                 kind: str) -> torch.Tensor:
        """The authors' truncated DDIM from `level` to t=0 (alpha_cumprod[0]). Timesteps are
        the outer loop so the reference features of a timestep are computed once for all
        chunks of views."""
        timesteps = self.levels.descent(level, steps)
        for timestep, following in zip(timesteps, timesteps[1:] + [0]):
            noise = self.predict_noise(latents, timestep, views, condition)
            latents = ddim_step(latents, noise, self._alpha(timestep), self._alpha(following))
        self.evaluations.add(kind, len(views), len(timesteps))
        return self._decode(latents)

    @torch.no_grad()
    def predict_noise(self, latents: torch.Tensor, timestep: int, views: Views, condition: Condition) -> torch.Tensor:
        """The guided epsilon for V noisy latents at `timestep` (one evaluation per view;
        not counted here, the callers count what they are)."""
        self._check_size(views.normal_maps, "normal maps")
        if len(latents) != len(views):
            raise JokerError(f"{len(latents)} noisy renders for {len(views)} views",
                             "pass one noisy render per view")
        self._check_size(condition.reference, "reference images")
        prompts = _per_view(condition.prompt, len(views))
        reference_key = tensor_digest(condition.reference)  # once per call, not per chunk
        return torch.cat([
            self._guided_chunk(latents[start:start + self.chunk_size], timestep,
                               views.normal_maps[start:start + self.chunk_size], condition, reference_key,
                               prompts[start:start + self.chunk_size])
            for start in range(0, len(views), self.chunk_size)])

    def _guided_chunk(self, latents: torch.Tensor, timestep: int, normal_maps: torch.Tensor,
                      condition: Condition, reference_key: str, prompts: list[str]) -> torch.Tensor:
        guide = condition.guidance_scale > 1.0
        texts = [condition.negative_prompt] * len(prompts) + prompts if guide else prompts
        halves = 2 if guide else 1
        model = self.model
        distinct = sorted(set(texts))
        embeddings = model.encode_text(distinct)
        index = torch.tensor([distinct.index(text) for text in texts], device=model.device)
        reference = self._reference_features(condition.reference, reference_key, timestep, distinct, embeddings)
        if len(distinct) > 1:
            reference = {layer: tokens[index] for layer, tokens in reference.items()}
        noise = model.predict_noise(latents.repeat(halves, 1, 1, 1),
                                    torch.full((len(texts),), timestep, device=model.device),
                                    embeddings[index], normal_maps.repeat(halves, 1, 1, 1), reference)
        return guided(*noise.chunk(2), condition.guidance_scale) if guide else noise

    def _reference_features(self, reference: torch.Tensor, reference_key: str, timestep: int, texts: list[str],
                            embeddings: torch.Tensor) -> ReferenceFeatures:
        """Per layer len(texts) x tokens x C, each text's entry from the cache."""
        model = self.model
        draw = timestep if self.vae_latents == "sample" else "mean"
        latents = self.cache.get((reference_key, "latents", draw), lambda: self._reference_latents(reference, timestep))
        timesteps = torch.tensor([timestep], device=model.device)
        per_text = [self.cache.get((reference_key, draw, timestep, text),
                                   lambda e=embedding: model.reference_features(latents[None], timesteps, e[None]))
                    for text, embedding in zip(texts, embeddings)]
        return {layer: torch.cat([features[layer] for features in per_text]) for layer in per_text[0]}

    def _reference_latents(self, reference: torch.Tensor, timestep: int) -> torch.Tensor:
        """The posterior mean, or the draw for this timestep (deterministic under the seed)."""
        if self.vae_latents == "mean":
            return self.model.encode_images(reference)
        generator = torch.Generator(self.model.device).manual_seed(self.seed * 1000 + timestep)
        return self.model.encode_images(reference, generator=generator)

    def _decode(self, latents: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.model.decode_latents(chunk) for chunk in latents.split(self.chunk_size)])

    def _alpha(self, timestep: int) -> torch.Tensor:
        return self.model.scheduler.alphas_cumprod[timestep].to(self.model.device, torch.float32)

    def _check_size(self, images: torch.Tensor, what: str) -> None:
        size = self.model.image_size
        if tuple(images.shape[-2:]) != (size, size):
            height, width = images.shape[-2:]
            raise JokerError(f"{what} are {width}x{height} pixels but this prior works at {size}x{size}",
                             f"resize or crop them to {size}x{size}")


def _per_view(prompt: str | Sequence[str], views: int) -> list[str]:
    if isinstance(prompt, str):
        return [prompt] * views
    if len(prompt) != views:
        raise JokerError(f"{len(prompt)} prompts for {views} views", "give one prompt, or one per view")
    return list(prompt)


def pndm_scheduler(config) -> PNDMScheduler:
    """PNDM as SD1.5's scheduler_config.json sets it (PLMS only, no Runge-Kutta warm-up)."""
    return PNDMScheduler.from_config({**config, "skip_prk_steps": True})

"""The Joker prior's networks, as the published module holds them.

Attribute names are the published state dict's key prefixes (`unet.`, `ref_unet.`,
`controlnet.`, `vae.`, `text_encoder.`), so `state_dict()` speaks the official layout.
"""

from __future__ import annotations

import warnings

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
from torch import nn
from transformers import CLIPTextModel, CLIPTokenizer

from .reference_attention import ReferenceBank, ReferenceFeatures, install_reference_attention, stack_references

TRAINED_MODULES = ("unet", "ref_unet", "controlnet")
FROZEN_MODULES = ("vae", "text_encoder")
MODULES = TRAINED_MODULES + FROZEN_MODULES


class PromptTruncatedWarning(UserWarning):
    """A prompt was longer than the text encoder reads; its tail was dropped."""


class JokerPriorModel(nn.Module):
    """Denoising UNet + reference UNet + normal-map ControlNet + VAE + CLIP text encoder."""

    def __init__(self, unet: UNet2DConditionModel, ref_unet: UNet2DConditionModel, controlnet: ControlNetModel,
                 vae: AutoencoderKL, text_encoder: CLIPTextModel, tokenizer: CLIPTokenizer,
                 scheduler: DDIMScheduler) -> None:
        super().__init__()
        self.unet, self.ref_unet, self.controlnet = unet, ref_unet, controlnet
        self.vae, self.text_encoder = vae, text_encoder
        self.tokenizer, self.scheduler = tokenizer, scheduler
        self.bank = ReferenceBank()
        install_reference_attention(unet, ref_unet, self.bank)
        for name in FROZEN_MODULES:
            getattr(self, name).requires_grad_(False)

    @property
    def latent_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        return self.unet.config.sample_size * self.latent_factor

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.dtype

    @property
    def device(self) -> torch.device:
        return self.unet.device

    def encode_text(self, prompts: list[str]) -> torch.Tensor:
        """B prompts -> B x L x D CLIP hidden states; over-long prompts are cut, with a warning."""
        limit = self.tokenizer.model_max_length
        for prompt in prompts:
            length = len(self.tokenizer(prompt).input_ids)
            if length > limit:
                warnings.warn(f"prompt has {length} tokens, the text encoder reads {limit}; "
                              f"the rest is dropped: {prompt[:60]!r}...", PromptTruncatedWarning, stacklevel=3)
        ids = self.tokenizer(prompts, padding="max_length", max_length=limit, truncation=True,
                             return_tensors="pt").input_ids
        return self.text_encoder(ids.to(self.device))[0].to(self.dtype)

    def encode_images(self, images: torch.Tensor, sample: bool = False,
                      generator: torch.Generator | None = None) -> torch.Tensor:
        """B x 3 x H x W in [0, 1] -> scaled latents: the posterior mean, or a draw from it
        (as published) when `sample` or a generator is given."""
        posterior = self.vae.encode(images.to(self.device, self.vae.dtype) * 2 - 1).latent_dist
        latents = posterior.sample(generator) if sample or generator is not None else posterior.mean
        return (latents * self.vae.config.scaling_factor).to(self.dtype)

    def decode_latents(self, latents: torch.Tensor) -> torch.Tensor:
        images = self.vae.decode(latents.to(self.vae.dtype) / self.vae.config.scaling_factor).sample
        return ((images.float() + 1) / 2).clamp(0, 1)

    def reference_features(self, reference_latents: torch.Tensor, timesteps: torch.Tensor,
                           text: torch.Tensor) -> ReferenceFeatures:
        """B x R x 4 x h x w clean reference latents seen by the reference UNet at B timesteps
        with B texts -> per attn1 layer B x (R * tokens) x C."""
        batch, references = reference_latents.shape[:2]
        with self.bank.record() as recorded:
            self.ref_unet(reference_latents.flatten(0, 1), timesteps.repeat_interleave(references),
                          encoder_hidden_states=text.repeat_interleave(references, dim=0))
            features = dict(recorded)
        return stack_references(features, references)

    def predict_noise(self, noisy_latents: torch.Tensor, timesteps: torch.Tensor, text: torch.Tensor,
                      normal_maps: torch.Tensor, reference: ReferenceFeatures | None) -> torch.Tensor:
        """Epsilon for B noisy latents; normal maps B x 3 x H x W in [0, 1] (the ControlNet sees
        them in [-1, 1], as the published code feeds it)."""
        noisy_latents = noisy_latents.to(self.device, self.dtype)
        control = normal_maps.to(self.device, self.controlnet.dtype) * 2 - 1
        down, mid = self.controlnet(noisy_latents, timesteps, encoder_hidden_states=text,
                                    controlnet_cond=control, return_dict=False)
        with self.bank.read(reference):
            return self.unet(noisy_latents, timesteps, encoder_hidden_states=text,
                             down_block_additional_residuals=down, mid_block_additional_residual=mid).sample

"""The published training objective as one module, so accelerate (DDP, autocast) wraps a
plain forward: MSE between the true and predicted epsilon at a random timestep, the
caption dropped with probability `text_dropout` (so guidance has an unconditional model)."""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F
from torch import nn

from joker.prior.diffusion.model import JokerPriorModel


class DenoisingLoss(nn.Module):
    def __init__(self, model: JokerPriorModel, text_dropout: float = 0.1, seed: int = 0) -> None:
        super().__init__()
        self.model = model
        self.text_dropout = text_dropout
        self._random = random.Random(seed)

    def forward(self, target: torch.Tensor, normal: torch.Tensor, references: torch.Tensor,
                caption: list[str]) -> torch.Tensor:
        model = self.model
        batch, count = references.shape[:2]
        with torch.no_grad():  # VAE and text encoder are frozen
            latents = model.encode_images(target, sample=True)
            reference_latents = model.encode_images(references.flatten(0, 1), sample=True)
            captions = ["" if self._random.random() < self.text_dropout else text for text in caption]
            text = model.encode_text(captions)
        reference_latents = reference_latents.unflatten(0, (batch, count))
        noise = torch.randn_like(latents)
        timesteps = torch.randint(0, model.scheduler.config.num_train_timesteps, (batch,), device=latents.device)
        noisy = model.scheduler.add_noise(latents, noise, timesteps)
        features = model.reference_features(reference_latents, timesteps, text)
        predicted = model.predict_noise(noisy, timesteps, text, normal, features)
        return F.mse_loss(predicted.float(), noise.float())

"""The reference UNet's attn1 inputs really reach the denoising UNet's attn1 layers."""

from __future__ import annotations

import torch

from joker.prior.diffusion.reference_attention import self_attention_layers

LATENT = 8  # the tiny prior works at 64 px


def _inputs(model, batch: int, references: int):
    generator = torch.Generator().manual_seed(3)
    text = model.encode_text(["a man screaming"] * batch)
    timesteps = torch.full((batch,), 500)
    reference_latents = torch.randn(batch, references, 4, LATENT, LATENT, generator=generator)
    noisy = torch.randn(batch, 4, LATENT, LATENT, generator=generator)
    normals = torch.rand(batch, 3, 8 * LATENT, 8 * LATENT, generator=generator)
    return text, timesteps, reference_latents, noisy, normals


@torch.no_grad()
def test_every_attn1_reads_reference_tokens_and_they_change_the_output(tiny_model):
    text, timesteps, reference_latents, noisy, normals = _inputs(tiny_model, batch=2, references=1)
    features = tiny_model.reference_features(reference_latents, timesteps, text)
    layers = self_attention_layers(tiny_model.unet)
    assert len(layers) >= 4 and set(features) == set(layers)

    with_reference = tiny_model.predict_noise(noisy, timesteps, text, normals, features)
    assert tiny_model.bank.layers_read == set(layers)
    without_reference = tiny_model.predict_noise(noisy, timesteps, text, normals, None)
    assert tiny_model.bank.layers_read == set()
    assert (with_reference - without_reference).abs().mean() > 1e-3


@torch.no_grad()
def test_reference_tokens_scale_with_the_number_of_references(tiny_model):
    text, timesteps, reference_latents, _, _ = _inputs(tiny_model, batch=3, references=2)
    two = tiny_model.reference_features(reference_latents, timesteps, text)
    one = tiny_model.reference_features(reference_latents[:, :1], timesteps, text)
    for layer in two:
        assert two[layer].shape[0] == 3
        assert two[layer].shape[1] == 2 * one[layer].shape[1]
        # the first reference's tokens come first, unchanged by the second one
        torch.testing.assert_close(two[layer][:, :one[layer].shape[1]], one[layer])


@torch.no_grad()
def test_different_references_give_different_predictions(tiny_model):
    text, timesteps, reference_latents, noisy, normals = _inputs(tiny_model, batch=1, references=1)
    first = tiny_model.reference_features(reference_latents, timesteps, text)
    second = tiny_model.reference_features(-reference_latents, timesteps, text)
    assert not torch.allclose(tiny_model.predict_noise(noisy, timesteps, text, normals, first),
                              tiny_model.predict_noise(noisy, timesteps, text, normals, second), atol=1e-4)

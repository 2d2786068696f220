"""Tiny random-weight Joker priors for tests, CI and benchmarks: every real code path, in
seconds. Their output is noise-shaped; they are never offered to users as a prior."""

from __future__ import annotations

from pathlib import Path

import torch
from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
from tokenizers.pre_tokenizers import ByteLevel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from joker.prior.diffusion.model import JokerPriorModel

SD15_SCHEDULER = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                      clip_sample=False, set_alpha_to_one=False, steps_offset=1, prediction_type="epsilon")
TEXT_WIDTH = 32


def write_tiny_tokenizer(folder: Path) -> CLIPTokenizer:
    """A CLIP BPE tokenizer, saved to `folder`, whose vocabulary is the 256 byte symbols
    (alone and word-final) with no merges: any text tokenizes, one token per character."""
    symbols = sorted(ByteLevel.alphabet())
    vocab = {token: i for i, token in enumerate(symbols + [s + "</w>" for s in symbols])}
    vocab.update({"<|startoftext|>": len(vocab), "<|endoftext|>": len(vocab) + 1})
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)
    tokenizer.save_pretrained(folder)
    return CLIPTokenizer.from_pretrained(folder, local_files_only=True)


def tiny_unet(image_size: int) -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=image_size // 8, block_out_channels=(32, 64), layers_per_block=1, norm_num_groups=8,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH, attention_head_dim=8)


def tiny_vae() -> AutoencoderKL:
    """Four blocks, so the latents are 1/8 of the image as in SD1.5."""
    blocks = 4
    return AutoencoderKL(block_out_channels=(16,) * blocks, down_block_types=("DownEncoderBlock2D",) * blocks,
                         up_block_types=("UpDecoderBlock2D",) * blocks, layers_per_block=1, norm_num_groups=8,
                         latent_channels=4)


def tiny_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))


def tiny_prior_model(tokenizer_folder: Path, image_size: int = 64, seed: int = 0) -> JokerPriorModel:
    """A random-weight JokerPriorModel at `image_size` pixels (a multiple of 32)."""
    torch.manual_seed(seed)
    tokenizer = write_tiny_tokenizer(Path(tokenizer_folder))
    ref_unet = tiny_unet(image_size)
    return JokerPriorModel(
        unet=tiny_unet(image_size), ref_unet=ref_unet,
        controlnet=ControlNetModel.from_unet(ref_unet, conditioning_channels=3),
        vae=tiny_vae(), text_encoder=tiny_text_encoder(tokenizer), tokenizer=tokenizer,
        scheduler=DDIMScheduler(**SD15_SCHEDULER)).eval()

"""Reference attention through diffusers attention processors.

The reference UNet's pass records the hidden states entering each of its self-attention
(`attn1`) layers; in the denoising UNet the same layer concatenates them to its own tokens
along the token axis before `to_k`/`to_v`, so its queries can look at the reference photo.
Both UNets share one `ReferenceBank`; the processors only read and write it.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch
import torch.nn.functional as F
from diffusers import UNet2DConditionModel
from diffusers.models.attention_processor import Attention

# Per attn1 layer name: B x T x C tokens, T = references x tokens per reference.
ReferenceFeatures = dict[str, torch.Tensor]


class ReferenceBank:
    """What flows from the reference UNet to the denoising UNet during one pass of each."""

    def __init__(self) -> None:
        self.recorded: ReferenceFeatures | None = None
        self.reading: ReferenceFeatures | None = None
        self.layers_read: set[str] = set()

    @contextlib.contextmanager
    def record(self) -> Iterator[ReferenceFeatures]:
        self.recorded = {}
        try:
            yield self.recorded
        finally:
            self.recorded = None

    @contextlib.contextmanager
    def read(self, features: ReferenceFeatures | None) -> Iterator[None]:
        self.reading, self.layers_read = features, set()
        try:
            yield
        finally:
            self.reading = None


def _self_attention(attn: Attention, hidden_states: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
    """SDPA self-attention of `hidden_states` (B x N x C) over the tokens of `context`."""
    batch, _, _ = hidden_states.shape
    head_dim = attn.inner_dim // attn.heads
    query = attn.to_q(hidden_states).view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    key = attn.to_k(context).view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    value = attn.to_v(context).view(batch, -1, attn.heads, head_dim).transpose(1, 2)
    out = F.scaled_dot_product_attention(query, key, value, scale=attn.scale)
    out = out.transpose(1, 2).reshape(batch, -1, attn.heads * head_dim).to(query.dtype)
    out = attn.to_out[1](attn.to_out[0](out))
    if attn.residual_connection:
        out = out + hidden_states
    return out / attn.rescale_output_factor


class RecordReferenceProcessor:
    """Reference UNet side: plain self-attention that also records its input tokens."""

    def __init__(self, bank: ReferenceBank, layer: str) -> None:
        self.bank, self.layer = bank, layer

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, **kwargs) -> torch.Tensor:
        if self.bank.recorded is not None:
            self.bank.recorded[self.layer] = hidden_states
        return _self_attention(attn, hidden_states, hidden_states)


class ReadReferenceProcessor:
    """Denoising UNet side: keys and values also come from the reference tokens."""

    def __init__(self, bank: ReferenceBank, layer: str) -> None:
        self.bank, self.layer = bank, layer

    def __call__(self, attn: Attention, hidden_states: torch.Tensor, encoder_hidden_states=None,
                 attention_mask=None, temb=None, **kwargs) -> torch.Tensor:
        context = hidden_states
        if self.bank.reading is not None:
            reference = self.bank.reading[self.layer].to(hidden_states.dtype)
            context = torch.cat([hidden_states, reference.expand(hidden_states.shape[0], -1, -1)], dim=1)
            self.bank.layers_read.add(self.layer)
        return _self_attention(attn, hidden_states, context)


def self_attention_layers(unet: UNet2DConditionModel) -> list[str]:
    """Names of the UNet's `attn1` modules, the same in both UNets (same architecture)."""
    return [name for name, module in unet.named_modules()
            if name.endswith(".attn1") and isinstance(module, Attention)]


def install_reference_attention(unet: UNet2DConditionModel, ref_unet: UNet2DConditionModel,
                                bank: ReferenceBank) -> None:
    """Give every `attn1` of both UNets its processor; cross-attention stays as it was."""
    for model, processor_type in ((ref_unet, RecordReferenceProcessor), (unet, ReadReferenceProcessor)):
        processors = dict(model.attn_processors)
        for layer in self_attention_layers(model):
            processors[f"{layer}.processor"] = processor_type(bank, layer)
        model.set_attn_processor(processors)


def stack_references(features: ReferenceFeatures, references: int) -> ReferenceFeatures:
    """(B * R) x N x C per layer, as recorded for R references per item -> B x (R * N) x C."""
    return {layer: tokens.reshape(tokens.shape[0] // references, references * tokens.shape[1], tokens.shape[2])
            for layer, tokens in features.items()}

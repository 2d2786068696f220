"""Where the prior runs and in which precision: CUDA fp16/bf16 (SDPA), Apple MPS, CPU fp32."""

from __future__ import annotations

import os

import torch
from torch import nn

from joker_core.errors import JokerError

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
GiB = 1024 ** 3
# Weights are not all a run needs: activations of a chunk of views, the VAE at full
# resolution and the allocator's slack. A rough allowance (not yet measured on a GPU), so
# the check refuses what surely cannot fit rather than promising what will.
WORKING_MARGIN = 1.25


def choose_dtype(device: torch.device, precision: str = "auto") -> torch.dtype:
    if precision == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float16 if device.type == "mps" else torch.float32
    if precision not in PRECISIONS:
        raise JokerError(f"unknown precision {precision!r}", f"use auto or one of {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if device.type == "cpu" and dtype != torch.float32:
        raise JokerError(f"{precision} on the CPU is slower than fp32 and not supported here",
                         "use --precision fp32 (or auto) on the CPU")
    return dtype


def free_memory(device: torch.device) -> int | None:
    """Bytes free on `device`, or None where it cannot be known."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    if device.type == "mps":
        return torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_needed(model: nn.Module, dtype: torch.dtype) -> int:
    parameters = sum(p.numel() for p in model.parameters())
    return int(parameters * torch.finfo(dtype).bits // 8 * WORKING_MARGIN)


def ensure_fits(model: nn.Module, device: torch.device, dtype: torch.dtype, free: int | None) -> None:
    needed = memory_needed(model, dtype)
    if free is not None and needed > free:
        raise JokerError(f"the prior needs about {needed / GiB:.2f} GiB on {device} but {free / GiB:.2f} GiB is free",
                         "close other programs using that memory, use --precision fp16/bf16, or another device")


def place(model: nn.Module, device: torch.device, dtype: torch.dtype) -> nn.Module:
    """Move `model` to `device` in `dtype`, first checking it fits. Weights loaded for
    the CPU are already in memory, so only accelerators are checked."""
    if device.type != "cpu":
        ensure_fits(model, device, dtype, free_memory(device))
    return model.to(device=device, dtype=dtype)

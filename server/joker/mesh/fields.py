"""The field callables the mesher consumes, and their chunked evaluation.

A field is any function of world points (FLAME frame, metres): `density(points N x 3) -> N`
(higher is more solid) and `color(points N x 3) -> N x 3` in [0, 1] (sRGB-encoded, like image
pixels). Both are torch callables, so the radiance field, an analytic test field or a
remote model all plug in the same way.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from joker_core.errors import JokerError

DensityField = Callable[[torch.Tensor], torch.Tensor]
ColorField = Callable[[torch.Tensor], torch.Tensor]


def evaluate(field: Callable[[torch.Tensor], torch.Tensor], points: np.ndarray, *, what: str,
             channels: int, chunk_size: int = 1 << 18,
             device: str | torch.device = "cpu") -> np.ndarray:
    """Evaluate `field` at N x 3 world points in chunks.

    Returns float32 numpy, shape (N,) for one channel or (N, channels); refuses NaN/inf.
    """
    outputs = []
    with torch.inference_mode():
        for start in range(0, len(points), chunk_size):
            batch = torch.as_tensor(points[start:start + chunk_size], dtype=torch.float32, device=device)
            values = field(batch).detach().to("cpu", torch.float32)
            if values.numel() != len(batch) * channels:
                raise JokerError(f"the {what} field returned shape {tuple(values.shape)} for {len(batch)} points",
                                 f"make the {what} callable return {channels} value(s) per input point")
            outputs.append(values.numpy().reshape((len(batch), channels)))
    values = np.concatenate(outputs) if outputs else np.zeros((0, channels), np.float32)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise JokerError(f"the {what} field returned NaN or infinite values at {int(bad.sum())} of "
                         f"{len(points)} sampled points, so the radiance field is broken (distillation likely diverged)",
                         "re-run the distillation (lower learning rate or another seed) before extracting a mesh")
    return values[:, 0] if channels == 1 else values

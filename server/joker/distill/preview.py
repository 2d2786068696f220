"""The preview strip the distiller publishes at every target refresh: the field's renders of
the first views on top, the prior's new targets for them below.

It is sized for a panel (each view at most PREVIEW_TILE px, so at most 384 x 192) whatever
the render size: Blender's add-on decodes each preview on its UI thread within a 20 ms tick
budget, where a 2048 x 1024 strip (4 views at 512 px) took 170 ms and a 512 x 256 one up to
17 ms on the shared 2-core machine (benchmarks/bench_preview_tick.py); the panel shows it
about 200 px wide. It is written by the engine's one PNG writer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from joker_core.files import atomic_write_bytes
from joker_core.png import encode_png

PREVIEW_VIEWS = 4   # views side by side
PREVIEW_TILE = 96   # px, the longest side of a view in the strip at most


def preview_strip(renders: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """H x W x 3 uint8: the first PREVIEW_VIEWS of `renders` (N x 3 x h x w, [0, 1]) above the
    same views' `targets` (N x 3 x H x W), each tile the render's size, area-averaged down to
    PREVIEW_TILE."""
    renders, targets = renders[:PREVIEW_VIEWS], targets[:PREVIEW_VIEWS]
    height, width = renders.shape[-2:]
    scale = min(1.0, PREVIEW_TILE / max(height, width))
    tile = (max(1, int(height * scale)), max(1, int(width * scale)))
    rows = [torch.cat(list(F.interpolate(images.float(), size=tile, mode="area")), -1) for images in (renders, targets)]
    return (torch.cat(rows, -2).permute(1, 2, 0).clamp(0, 1) * 255).round().byte().cpu().numpy()


def write_preview(path: Path, renders: torch.Tensor, targets: torch.Tensor) -> Path:
    """The strip of `renders` over `targets` as a PNG at `path` (written atomically)."""
    return atomic_write_bytes(path, encode_png(preview_strip(renders, targets)))

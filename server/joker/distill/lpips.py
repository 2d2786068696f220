"""LPIPS (VGG) as a loss, from a weights file the caller names: nothing is downloaded and
nothing is looked up behind the caller's back (a preset that weights LPIPS trains the same
on every machine, or says that it could not; see distiller.LpipsSetting).

The weights file is one safetensors file holding torchvision's VGG16 `features.N.weight/bias`
and the LPIPS v0.1 linear heads `linK.model.1.weight` (K = 0..4), i.e. the two published
checkpoints merged.
"""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn import functional as F

from joker_core.errors import JokerError

# VGG16 convolution widths, "M" = 2x2 max-pool; LPIPS taps the ReLU after each block's last conv.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_TAPS = (3, 8, 15, 22, 29)  # indices in torchvision's vgg16.features
_TAP_CHANNELS = (64, 128, 256, 512, 512)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def _vgg16_features() -> nn.Sequential:
    layers, channels = [], 3
    for width in _VGG16:
        if width == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
            channels = width
    return nn.Sequential(*layers)


class _Linear(nn.Module):
    """LPIPS's per-tap head, named as in its checkpoints (`model.1` is the 1x1 conv)."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class Lpips(nn.Module):
    """Perceptual distance of images in [0, 1], B x 3 x H x W -> scalar mean over the batch."""

    def __init__(self):
        super().__init__()
        self.features = _vgg16_features()
        for k, channels in enumerate(_TAP_CHANNELS):
            self.add_module(f"lin{k}", _Linear(channels))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1), persistent=False)
        self.requires_grad_(False).eval()

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Lpips":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        model = cls()
        try:
            model.load_state_dict(load_file(str(path)))
        except (RuntimeError, OSError, SafetensorError) as exc:
            raise JokerError(f"LPIPS weights at {path} do not fit LPIPS(VGG16): {exc}".splitlines()[0],
                             "merge torchvision's vgg16 `features.*` and LPIPS v0.1 `lin*` weights into "
                             "one safetensors file, or remove it to train without LPIPS") from exc
        return model

    def _taps(self, images: torch.Tensor) -> list[torch.Tensor]:
        x = ((images * 2 - 1) - self.shift) / self.scale
        taps = []
        for index, layer in enumerate(self.features[:_TAPS[-1] + 1]):
            x = layer(x)
            if index in _TAPS:
                taps.append(x / (x.norm(dim=1, keepdim=True) + 1e-10))
        return taps

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        distance = a.new_zeros(())
        for k, (tap_a, tap_b) in enumerate(zip(self._taps(a), self._taps(b))):
            head = getattr(self, f"lin{k}").model[1]
            distance = distance + F.conv2d((tap_a - tap_b) ** 2, head.weight).mean()
        return distance


def load_lpips(path: str | os.PathLike) -> Lpips:
    """LPIPS from the weights file at `path`; a missing or unfit file is refused with the fix."""
    if not os.path.isfile(path):
        raise JokerError(f"no LPIPS weights file at {path}", LPIPS_FIX)
    return Lpips.from_file(path)


LPIPS_FIX = ("give a safetensors file of torchvision's vgg16 `features.*` and LPIPS v0.1 `lin*` weights "
             "(lpips_weights), or set the LPIPS weight to 0")

"""Which torch device a job runs on: one rule for every command, job and prior."""

from __future__ import annotations

import torch

from joker_core.errors import JokerError

_MISSING = {
    "cuda": "no CUDA GPU is available on this machine",
    "mps": "Apple's Metal (MPS) backend is not available on this machine",
}


def choose_device(name: str = "auto") -> torch.device:
    """"auto" (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:N" or "mps"."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    kind = name.split(":")[0]
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if kind not in available:
        raise JokerError(f"unknown device {name!r}", "use auto, cpu, cuda, cuda:N or mps")
    if not available[kind]:
        raise JokerError(f"device {name!r} was asked for but {_MISSING[kind]}",
                         "use device 'cpu' (or 'auto'), or run the engine on a machine that has one")
    return torch.device(name)

"""The authors' released checkpoint: one torch state dict of the whole prior module.

Read as data only (`weights_only`), renamed to our module's keys, and checked strictly so
a checkpoint for another architecture fails with one message that says, per module, what
is missing, what is unexpected and what has another shape.
"""

from __future__ import annotations

import pickle
import re
from collections import defaultdict
from pathlib import Path
from typing import Iterable

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from joker_core.errors import JokerError

from .model import TRAINED_MODULES

StateDict = dict[str, torch.Tensor]

# diffusers < 0.15 named the VAE's mid-block attention projections differently.
_OLD_VAE_ATTENTION = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_OLD_VAE_KEY = re.compile(r"^(vae\.(?:encoder|decoder)\.mid_block\.attentions\.\d+)\.(query|key|value|proj_attn)\.")
# Buffers some transformers versions saved and others rebuild; never weights.
_IGNORED = re.compile(r"(^|\.)position_ids$")


def _torch_load(path: Path) -> object:
    """Memory-mapped where the file allows it (zip format); legacy files are read whole."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError as exc:
        if "mmap" not in str(exc):
            raise
        return torch.load(path, map_location="cpu", weights_only=True)


def read_state_dict(path: Path) -> StateDict:
    """A flat name -> tensor mapping from a torch or safetensors file, without running code from it."""
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except SafetensorError as exc:
            raise JokerError(f"{path} is not a readable safetensors file ({exc})",
                             "check the file is complete (re-download it)") from exc
    try:
        data = _torch_load(path)
    except pickle.UnpicklingError as exc:
        raise JokerError(f"{path} is a pickle that holds more than tensors (it would run code to load)",
                         "re-save it as a plain state dict: torch.save(module.state_dict(), path)") from exc
    except (RuntimeError, EOFError, OSError) as exc:
        raise JokerError(f"{path} is not a readable torch checkpoint ({exc})",
                         "check the file is complete (re-download it)") from exc
    if isinstance(data, dict) and set(data) == {"state_dict"}:
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                             for k, v in data.items()):
        raise JokerError(f"{path} holds a {type(data).__name__}, not a state dict of named tensors",
                         "save the prior with torch.save(module.state_dict(), path)")
    return data


def tensor_names(path: Path) -> list[str]:
    """The names in a weights file; safetensors headers are read without the tensors."""
    if path.suffix == ".safetensors":
        with safe_open(path, framework="pt") as handle:
            return list(handle.keys())
    return list(read_state_dict(path))


def module_prefixes(keys: Iterable[str]) -> dict[str, int]:
    """How many tensors sit under each top-level key prefix."""
    counts: dict[str, int] = defaultdict(int)
    for key in keys:
        counts[key.split(".", 1)[0]] += 1
    return dict(counts)


def is_official_layout(keys: Iterable[str]) -> bool:
    return set(TRAINED_MODULES) <= set(module_prefixes(keys))


def to_model_keys(state: StateDict) -> StateDict:
    """Official names -> JokerPriorModel names. The authors stored CLIP's inner text model,
    which is what transformers 5's CLIPTextModel is; older full-CLIPTextModel dumps carry an
    extra `text_model.` level."""
    renamed = {}
    for key, tensor in state.items():
        if _IGNORED.search(key):
            continue
        key = key.replace("text_encoder.text_model.", "text_encoder.", 1)
        key = _OLD_VAE_KEY.sub(lambda m: f"{m.group(1)}.{_OLD_VAE_ATTENTION[m.group(2)]}.", key)
        renamed[key] = tensor
    return renamed


def _grouped(keys: list[str], limit: int = 3) -> str:
    by_module: dict[str, list[str]] = defaultdict(list)
    for key in sorted(keys):
        module, _, rest = key.partition(".")
        by_module[module].append(rest)
    return "; ".join(f"{module}: {len(names)} ({', '.join(names[:limit])}{', ...' if len(names) > limit else ''})"
                     for module, names in sorted(by_module.items()))


def load_official_state(model: nn.Module, state: StateDict) -> None:
    """Load a whole-prior state dict into `model`; modules the checkpoint leaves out
    entirely (VAE, text encoder) keep the weights they were built with."""
    state = to_model_keys(state)
    present = set(module_prefixes(state))
    checked = present | set(TRAINED_MODULES)
    expected = {key: tensor for key, tensor in model.state_dict().items()
                if key.split(".", 1)[0] in checked and not _IGNORED.search(key)}
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    reshaped = [f"{key} {tuple(state[key].shape)} vs {tuple(expected[key].shape)}"
                for key in expected if key in state and state[key].shape != expected[key].shape]
    if missing or unexpected or reshaped:
        parts = [f"{label} - {_grouped(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("other shape", reshaped)) if keys]
        raise JokerError("checkpoint does not fit the Joker prior architecture: " + " | ".join(parts),
                         "use the released Joker checkpoint (bfm_ft_NersembleCelebvtext_230000.bin) "
                         "with an SD1.5 folder, or weights saved by `joker train-prior`")
    model.load_state_dict(state, strict=False)

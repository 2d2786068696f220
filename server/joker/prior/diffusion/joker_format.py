"""Our own weights format: one safetensors file per submodule, their configs in one JSON,
and the tokenizer folder. Self-contained: loading needs nothing else."""

from __future__ import annotations

import json
from pathlib import Path

from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from joker_core.errors import JokerError
from joker_core.files import atomic_directory

from .model import MODULES, JokerPriorModel

CONFIG_FILE = "joker_prior.json"
FORMAT = "joker-prior"
VERSION = 1
_DIFFUSERS_CLASSES = {"unet": UNet2DConditionModel, "ref_unet": UNet2DConditionModel,
                      "controlnet": ControlNetModel, "vae": AutoencoderKL}


def save_joker_prior(model: JokerPriorModel, folder: Path, overwrite: bool = False) -> Path:
    """Write `model` to `folder` atomically (nothing half-written stays on failure)."""
    configs = {name: dict(getattr(model, name).config) for name in _DIFFUSERS_CLASSES}
    configs["text_encoder"] = json.loads(model.text_encoder.config.to_json_string())
    manifest = {"format": FORMAT, "version": VERSION, "modules": configs,
                "scheduler": dict(model.scheduler.config)}
    with atomic_directory(folder, overwrite=overwrite) as staging:
        for name in MODULES:
            state = {key: tensor.contiguous() for key, tensor in getattr(model, name).state_dict().items()}
            save_file(state, staging / f"{name}.safetensors")
        model.tokenizer.save_pretrained(staging / "tokenizer")
        (staging / CONFIG_FILE).write_text(json.dumps(manifest, indent=1, default=list))
    return Path(folder)


def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / CONFIG_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise JokerError(f"{folder / CONFIG_FILE} is unreadable ({exc})",
                         "point to a folder written by `joker train-prior` or save_joker_prior") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise JokerError(f"{folder} holds format {manifest.get('format')!r} version {manifest.get('version')!r}",
                         f"use a {FORMAT} version {VERSION} folder")
    return manifest


def missing_parts(folder: Path) -> list[str]:
    wanted = [CONFIG_FILE, "tokenizer"] + [f"{name}.safetensors" for name in MODULES]
    return [part for part in wanted if not (folder / part).exists()]


def load_joker_prior(folder: Path) -> JokerPriorModel:
    """Build the networks from the JSON configs and fill them strictly from safetensors."""
    folder = Path(folder)
    missing = missing_parts(folder)
    if missing:
        raise JokerError(f"weights folder {folder} lacks {', '.join(missing)}",
                         "copy the whole folder written by `joker train-prior` (or save_joker_prior)")
    manifest = read_manifest(folder)
    configs = manifest["modules"]
    modules = {name: cls.from_config(configs[name]) for name, cls in _DIFFUSERS_CLASSES.items()}
    modules["text_encoder"] = CLIPTextModel(CLIPTextConfig.from_dict(configs["text_encoder"]))
    for name, module in modules.items():
        try:
            state = load_file(folder / f"{name}.safetensors")
            module.load_state_dict(state, strict=True)
        except (SafetensorError, RuntimeError) as exc:
            raise JokerError(f"{folder / (name + '.safetensors')} does not match its config ({exc})".split("\n")[0],
                             "re-save the prior; the folder mixes files from different models") from exc
    return JokerPriorModel(**modules, tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True),
                           scheduler=DDIMScheduler.from_config(manifest["scheduler"])).eval()

"""Loading the prior from local paths only (never a hub):

a. an SD1.5 folder in diffusers layout initialises all three networks (for training);
b. the authors' released checkpoint, with an SD1.5 folder for tokenizer and configs;
c. our own format (joker_format).

`describe_weights` says what a path holds and whether it can be loaded, without loading it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path

from joker_core.errors import JokerError

from . import checkpoint, joker_format
from .model import JokerPriorModel

SD15_PARTS = {
    "unet": ("config.json", ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")),
    "vae": ("config.json", ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")),
    "text_encoder": ("config.json", ("model.safetensors", "pytorch_model.bin")),
    "tokenizer": ("tokenizer_config.json", ()),
    "scheduler": ("scheduler_config.json", ()),
}
TORCH_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


def sd15_missing_parts(folder: Path, vae_folder: Path | None = None) -> list[str]:
    missing = []
    for part, (config, weights) in SD15_PARTS.items():
        where = vae_folder if part == "vae" and vae_folder else folder / part
        if not (where / config).is_file():
            missing.append(f"{part}/{config}")
        elif weights and not any((where / name).is_file() for name in weights):
            missing.append(f"{part}/{weights[0]}")
    return missing


def load_sd15(folder: Path, vae_folder: Path | None = None) -> JokerPriorModel:
    """Path (a): denoising and reference UNet from SD1.5's UNet, the ControlNet built from
    the reference UNet with a 3-channel (normal map) input."""
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    folder = Path(folder)
    missing = sd15_missing_parts(folder, vae_folder)
    if missing:
        raise JokerError(f"SD1.5 folder {folder} lacks {', '.join(missing)}",
                         "give a complete Stable Diffusion 1.5 folder in diffusers layout "
                         "(unet, vae, text_encoder, tokenizer, scheduler)")
    local = dict(local_files_only=True)
    ref_unet = UNet2DConditionModel.from_pretrained(folder / "unet", **local)
    return JokerPriorModel(
        unet=copy.deepcopy(ref_unet), ref_unet=ref_unet,
        controlnet=ControlNetModel.from_unet(ref_unet, conditioning_channels=3),
        vae=AutoencoderKL.from_pretrained(vae_folder or folder / "vae", **local),
        text_encoder=CLIPTextModel.from_pretrained(folder / "text_encoder", **local),
        tokenizer=CLIPTokenizer.from_pretrained(folder / "tokenizer", **local),
        scheduler=DDIMScheduler.from_pretrained(folder / "scheduler", **local)).eval()


def load_official(checkpoint_path: Path, sd15_folder: Path | None, vae_folder: Path | None = None) -> JokerPriorModel:
    """Path (b): the released whole-prior state dict over an SD1.5-initialised model."""
    if sd15_folder is None:
        raise JokerError(f"{checkpoint_path} is a bare state dict; the tokenizer and configs come from SD1.5",
                         "also give the Stable Diffusion 1.5 folder (--sd15 FOLDER)")
    state = checkpoint.read_state_dict(Path(checkpoint_path))
    model = load_sd15(sd15_folder, vae_folder)
    checkpoint.load_official_state(model, state)
    return model


def _layout(path: Path) -> str:
    """joker | sd15 | file (a torch or safetensors state dict) | missing | unknown."""
    if path.is_dir():
        if (path / joker_format.CONFIG_FILE).exists():
            return "joker"
        return "sd15" if (path / "unet").is_dir() or (path / "model_index.json").exists() else "unknown"
    if path.is_file():
        return "file" if path.suffix in TORCH_SUFFIXES + (".safetensors",) else "unknown"
    return "missing"


def load_prior(path: Path, sd15_folder: Path | None = None, vae_folder: Path | None = None) -> JokerPriorModel:
    """Any supported weights path -> JokerPriorModel on the CPU in fp32."""
    path = Path(path)
    layout = _layout(path)
    if layout == "joker":
        return joker_format.load_joker_prior(path)
    if layout == "sd15":
        return load_sd15(path, vae_folder)
    if layout == "file":
        return load_official(path, sd15_folder, vae_folder)
    if layout == "missing":
        raise JokerError(f"weights path {path} does not exist", "give the path of a weights folder or file")
    raise JokerError(f"{path} is not a weights format the prior knows",
                     "give our prior folder, an SD1.5 diffusers folder, or the released .bin checkpoint")


@dataclass
class WeightsDescription:
    path: Path
    kind: str  # joker | sd15 | official | state-dict | unknown
    contents: dict[str, int] = field(default_factory=dict)  # part -> tensors (or files)
    problems: list[str] = field(default_factory=list)
    needs_sd15: bool = False

    @property
    def loadable(self) -> bool:
        return self.kind != "unknown" and not self.problems


def describe_weights(path: Path) -> WeightsDescription:
    """What `path` holds, read from file headers and key names (no weights loaded)."""
    path = Path(path)
    layout = _layout(path)
    if layout == "joker":
        contents = {file.stem: len(checkpoint.tensor_names(file)) for file in sorted(path.glob("*.safetensors"))}
        return WeightsDescription(path, "joker", contents, joker_format.missing_parts(path))
    if layout == "sd15":
        parts = {part: len(list((path / part).glob("*"))) for part in SD15_PARTS if (path / part).is_dir()}
        return WeightsDescription(path, "sd15", parts, [f"missing {p}" for p in sd15_missing_parts(path)])
    if layout == "file":
        try:
            names = checkpoint.tensor_names(path)
        except JokerError as error:
            return WeightsDescription(path, "unknown", problems=[str(error)])
        kind = "official" if checkpoint.is_official_layout(names) else "state-dict"
        problems = [] if kind == "official" else ["key prefixes are not unet./ref_unet./controlnet."]
        return WeightsDescription(path, kind, checkpoint.module_prefixes(names), problems, needs_sd15=True)
    problem = {"missing": "does not exist", "unknown": "is neither our prior, an SD1.5 folder nor a state dict"}
    return WeightsDescription(path, "unknown", problems=[problem[layout]])


def open_prior(path: Path, sd15_folder: Path | None = None, vae_folder: Path | None = None,
               device: str = "auto", precision: str = "auto", chunk_size: int = 8):
    """Load weights and place them for running: the DiffusionPrior a user asked for."""
    from ...devices import choose_device
    from .devices import choose_dtype, place
    from .pipeline import DiffusionPrior

    target = choose_device(device)
    dtype = choose_dtype(target, precision)
    model = place(load_prior(path, sd15_folder, vae_folder), target, dtype)
    return DiffusionPrior(model, chunk_size=chunk_size)

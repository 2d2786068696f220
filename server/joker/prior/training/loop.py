"""Training the prior with accelerate: mixed precision, gradient accumulation, multi-GPU
ready (launch with `accelerate launch`), checkpoints that resume, and a local log folder:

    OUT/log.jsonl                   per logged step: step, mean loss since the last line, lr, seconds
    OUT/samples/step_NNNNNN.png     reference | normal map | target | sample, one row per sample
    OUT/checkpoints/step_NNNNNN/    prior/ (our format), optimizer.pt, state.json
    OUT/final/                      the trained prior in our format (joker prior-sample --weights)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from joker_core.errors import JokerError
from joker_core.files import atomic_directory, atomic_write_bytes

from joker.prior.diffusion.joker_format import load_joker_prior, save_joker_prior
from joker.prior.diffusion.model import TRAINED_MODULES, JokerPriorModel

from .dataset import PriorDataset
from .objective import DenoisingLoss

CHECKPOINTS = "checkpoints"


@dataclass
class TrainingConfig:
    steps: int = 1000                 # optimizer steps
    batch_size: int = 1               # per device
    learning_rate: float = 1e-5       # published
    gradient_accumulation: int = 1
    mixed_precision: str = "no"       # no | fp16 | bf16 (published: bf16)
    text_dropout: float = 0.1         # published
    references: int = 1               # reference images per sample
    log_every: int = 10
    checkpoint_every: int = 500
    sample_every: int = 0             # 0: only after the last step
    sample_steps: int = 20
    samples_in_grid: int = 2
    seed: int = 0
    # The official recipe: only the parts the authors trained, gradients clipped to norm 1.0.
    trainable: str = "published"      # published | all (the three trained modules whole)
    grad_clip: float | None = 1.0     # max gradient norm; None: no clipping

    def check(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.gradient_accumulation < 1 or self.references < 1:
            raise JokerError("steps, batch size, gradient accumulation and references must be >= 1",
                             "give positive counts")
        if not 0.0 <= self.text_dropout < 1.0:
            raise JokerError(f"text dropout {self.text_dropout} is outside [0, 1)", "use e.g. 0.1 (published)")
        if self.mixed_precision not in ("no", "fp16", "bf16"):
            raise JokerError(f"mixed precision {self.mixed_precision!r} is unknown", "use no, fp16 or bf16")
        if self.trainable not in TRAINABLE:
            raise JokerError(f"trainable parts {self.trainable!r} are unknown", f"use one of {', '.join(TRAINABLE)}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise JokerError(f"gradient clip {self.grad_clip} is not positive", "use e.g. 1.0 (published), or none")
        if self.learning_rate <= 0:
            raise JokerError(f"learning rate {self.learning_rate} is not positive", "use e.g. 1e-5 (published)")


def latest_checkpoint(out: Path) -> Path | None:
    found = sorted((out / CHECKPOINTS).glob("step_*"))
    return found[-1] if found else None


TRAINABLE = ("published", "all")


def trainable_parameters(model: JokerPriorModel, parts: str = "published") -> list[torch.nn.Parameter]:
    """Marks what trains and freezes the rest. "published", as the authors' train.py: the
    denoising UNet's mid and up blocks, the reference UNet but its unused tail (what feeds
    no recorded attn1 input), the whole ControlNet. "all": the three modules whole."""
    model.requires_grad_(False)
    if parts == "all":
        chosen = [p for name in TRAINED_MODULES for p in getattr(model, name).parameters()]
    else:
        chosen = (list(model.unet.mid_block.parameters()) + list(model.unet.up_blocks.parameters())
                  + _feeding_reference_features(model) + list(model.controlnet.parameters()))
    for parameter in chosen:
        parameter.requires_grad_(True)
    return chosen


def _feeding_reference_features(model: JokerPriorModel) -> list[torch.nn.Parameter]:
    """The reference UNet's parameters with a gradient path to the features it records, found
    by one backward pass of a tiny input (the layers after its last attn1 input feed nothing)."""
    ref_unet = model.ref_unet
    ref_unet.requires_grad_(True)
    side = 2 ** (len(ref_unet.config.block_out_channels) - 1)
    latents = torch.randn(1, 1, ref_unet.config.in_channels, side, side, device=model.device, dtype=model.dtype)
    text = torch.zeros(1, 1, ref_unet.config.cross_attention_dim, device=model.device, dtype=model.dtype)
    features = model.reference_features(latents, torch.tensor([500], device=model.device), text)
    grads = torch.autograd.grad(sum(f.float().sum() for f in features.values()), list(ref_unet.parameters()),
                                allow_unused=True)
    ref_unet.requires_grad_(False)
    return [p for p, grad in zip(ref_unet.parameters(), grads) if grad is not None]


def _save_checkpoint(out: Path, model: JokerPriorModel, optimizer: torch.optim.Optimizer, step: int) -> None:
    with atomic_directory(out / CHECKPOINTS / f"step_{step:06d}") as staging:
        save_joker_prior(model, staging / "prior")
        torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        (staging / "state.json").write_text(json.dumps({"step": step}))


def resume_from(checkpoint: Path) -> tuple[JokerPriorModel, dict, int]:
    """(model, optimizer state, step) of a checkpoint folder; read as data only."""
    try:
        step = int(json.loads((checkpoint / "state.json").read_text())["step"])
        optimizer_state = torch.load(checkpoint / "optimizer.pt", map_location="cpu", weights_only=True)
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise JokerError(f"checkpoint {checkpoint} is incomplete ({exc})",
                         "remove that folder to resume from the one before it") from exc
    return load_joker_prior(checkpoint / "prior"), optimizer_state, step


def _grid(rows: list[list[torch.Tensor]]) -> np.ndarray:
    image = torch.cat([torch.cat(row, dim=2) for row in rows], dim=1)
    return (image.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


def _write_samples(out: Path, model: JokerPriorModel, dataset: PriorDataset, config: TrainingConfig, step: int) -> None:
    from joker.prior.base import Condition, Views
    from joker.prior.diffusion.pipeline import DiffusionPrior
    from joker_core.png import encode_png

    prior = DiffusionPrior(model.eval())
    rows = []
    for index in range(min(config.samples_in_grid, len(dataset))):
        item = dataset[index]
        views = Views([dataset.camera(index)], item["normal"][None])
        condition = Condition(item["references"], item["caption"])
        generated = prior.sample(views, condition, config.sample_steps, torch.Generator().manual_seed(config.seed))
        rows.append([item["references"][0], item["normal"], item["target"], generated[0].float().cpu()])
    model.train()
    atomic_write_bytes(out / "samples" / f"step_{step:06d}.png", encode_png(_grid(rows)))


def train(model: JokerPriorModel, dataset_root: Path, out: Path, config: TrainingConfig,
          optimizer_state: dict | None = None, start_step: int = 0) -> list[float]:
    """Train `model` in place from `start_step` to `config.steps`; returns the logged losses."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, set_seed

    config.check()
    out.mkdir(parents=True, exist_ok=True)
    set_seed(config.seed)
    # The reference UNet's layers after its last attn1 feed nothing; DDP must not wait for them.
    accelerator = Accelerator(mixed_precision=config.mixed_precision,
                              gradient_accumulation_steps=config.gradient_accumulation,
                              kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    dataset = PriorDataset(dataset_root, config.references, config.seed)
    if dataset.image_size != model.image_size:
        raise JokerError(f"dataset images are {dataset.image_size} px but the prior works at {model.image_size} px",
                         "render the dataset at the prior's size")
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=False)
    objective = DenoisingLoss(model.train(), config.text_dropout, config.seed)
    parameters = trainable_parameters(model, config.trainable)
    optimizer = torch.optim.AdamW(parameters, lr=config.learning_rate, foreach=True)
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    objective, optimizer, loader = accelerator.prepare(objective, optimizer, loader)
    (out / "config.json").write_text(json.dumps(asdict(config), indent=1))

    losses, window, step, started = [], [], start_step, time.time()
    with open(out / "log.jsonl", "a") as log:
        while step < config.steps:
            for batch in loader:
                with accelerator.accumulate(objective):
                    loss = objective(batch["target"], batch["normal"], batch["references"], batch["caption"])
                    accelerator.backward(loss)
                    if config.grad_clip is not None and accelerator.sync_gradients:
                        accelerator.clip_grad_norm_(parameters, config.grad_clip)
                    optimizer.step()
                    optimizer.zero_grad()
                window.append(loss.detach())
                if not accelerator.sync_gradients:
                    continue
                step += 1
                if step % config.log_every == 0 or step == config.steps:
                    value = accelerator.gather(torch.stack(window)).mean().item()  # mean since the last line
                    losses.append(value)
                    window.clear()
                    if accelerator.is_main_process:
                        log.write(json.dumps({"step": step, "loss": value, "lr": config.learning_rate,
                                              "seconds": round(time.time() - started, 2)}) + "\n")
                        log.flush()
                unwrapped = accelerator.unwrap_model(objective).model
                if accelerator.is_main_process and step % config.checkpoint_every == 0:
                    _save_checkpoint(out, unwrapped, optimizer, step)
                if accelerator.is_main_process and config.sample_every and step % config.sample_every == 0:
                    _write_samples(out, unwrapped, dataset, config, step)
                if step >= config.steps:
                    break
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(objective).model
        _write_samples(out, unwrapped, dataset, config, step)
        save_joker_prior(unwrapped.eval(), out / "final", overwrite=True)
    return losses

"""`joker prior-info`: what a weights path holds and whether the diffusion prior can load it."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Say what a diffusion-prior weights path contains and whether it is loadable."

KINDS = {
    "joker": "Joker prior in our format (safetensors per submodule + joker_prior.json)",
    "sd15": "Stable Diffusion 1.5 folder in diffusers layout (initialises a prior for training)",
    "official": "whole-prior state dict in the authors' layout (needs an SD1.5 folder: --sd15)",
    "state-dict": "a state dict, but not in the prior's layout",
    "unknown": "not a weights format the prior knows",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", type=Path, help="weights folder or checkpoint file")
    parser.add_argument("--sd15", type=Path, help="SD1.5 folder, for a released checkpoint")
    parser.add_argument("--vae", type=Path, help="separate VAE folder (e.g. sd-vae-ft-mse)")
    parser.add_argument("--load", action="store_true",
                        help="also load every weight on the CPU (slow for full-size priors) to prove it fits")


def run(args: argparse.Namespace) -> int:
    from joker.prior.diffusion.loading import describe_weights, load_prior

    description = describe_weights(args.path)
    print(f"{description.path}: {KINDS[description.kind]}")
    for part, count in description.contents.items():
        print(f"  {part}: {count} {'files' if description.kind == 'sd15' else 'tensors'}")
    for problem in description.problems:
        print(f"  problem: {problem}")
    if not description.loadable:
        print("loadable: no")
        return 1
    if not args.load or (description.needs_sd15 and args.sd15 is None):
        checked = ("key prefixes match the authors' layout; --load --sd15 FOLDER checks every key"
                   if description.needs_sd15 else "all parts present; --load loads every weight")
        print(f"loadable: probably ({checked})")
        return 0
    from joker.prior.diffusion.devices import GiB, memory_needed
    import torch

    model = load_prior(args.path, args.sd15, args.vae)
    for name in ("unet", "ref_unet", "controlnet", "vae", "text_encoder"):
        print(f"  {name}: {sum(p.numel() for p in getattr(model, name).parameters()) / 1e6:.1f} M parameters")
    print(f"  image size {model.image_size} px; memory to run: about "
          f"{memory_needed(model, torch.float16) / GiB:.1f} GiB in fp16, {memory_needed(model, torch.float32) / GiB:.1f} GiB in fp32")
    print("loadable: yes (all weights loaded)")
    return 0

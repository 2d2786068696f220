"""`joker generate`: one photo + a pose -> a textured head (GLB, OBJ, turntable, metrics)."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from joker_core.errors import JokerError
from joker_core.files import input_file
from joker_core.protocol import MATERIALS, PRIORS, QUALITIES

from . import render_normals

HELP = "Generate a textured 3D head with a new expression from one photo."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("photo", type=Path, help="the reference photo (JPEG/PNG/WebP; one face, clearly visible)")
    parser.add_argument("--model", type=Path, default=None,
                        help="head model file: official FLAME .pkl or Joker .npz (default: the built-in demo head)")
    render_normals.add_pose_arguments(parser)
    parser.add_argument("--prompt", default="", help="what the rig cannot say: emotion nuances, tongue, teeth")
    parser.add_argument("--negative-prompt", default="", help="what to avoid")
    parser.add_argument("--quality", choices=QUALITIES, default="preview",
                        help="distillation effort (default: preview, sized for a laptop CPU)")
    parser.add_argument("--prior", choices=PRIORS, default="projection",
                        help="projection: weight-free default; joker: the diffusion prior (needs --weights)")
    parser.add_argument("--weights", default=None, help="the Joker prior's weights (see `joker prior-info`)")
    parser.add_argument("--sd15", default=None, help="SD1.5 folder, needed with the released checkpoint")
    parser.add_argument("--vae", default=None, help="separate VAE folder (e.g. sd-vae-ft-mse)")
    parser.add_argument("--lpips-weights", default=None,
                        help="LPIPS (VGG) safetensors file for the qualities that weight LPIPS (high); "
                             "without it they train without LPIPS and metrics.json says so")
    parser.add_argument("--material", choices=MATERIALS, default="lit",
                        help="the GLB's material: lit (base colour; light it evenly for the prior's look) or "
                             "unlit (KHR_materials_unlit: the colours as made, no scene light)")
    parser.add_argument("--eyes", default=None, metavar="X1,Y1,X2,Y2",
                        help="the photo's two eye centres in pixels, when automatic face detection fails")
    parser.add_argument("--seed", type=int, default=0, help="same seed, same result (default: 0)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default: auto)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (must be new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    input_file(args.photo, "photo")  # a typo is told at once, not after the engine's imports
    from joker.api import generate
    from joker_core.head_model import load_model
    from joker_core.protocol import JobSpec

    from ._progress import ProgressLine

    model_file = str(args.model) if args.model else None
    params = render_normals.rig_params_from_args(args, load_model(model_file))
    spec = JobSpec.from_dict({
        "prompt": args.prompt, "negative_prompt": args.negative_prompt,
        "quality": args.quality, "seed": args.seed, "device": args.device, "model": model_file,
        "prior": {"name": args.prior, "weights": args.weights, "sd15": args.sd15, "vae": args.vae},
        "alignment": _eyes(args.eyes), "lpips_weights": args.lpips_weights, "material": args.material})
    spec = replace(spec, rig=params)  # checked against the model already
    result = generate(args.photo, spec=spec, out_dir=args.out, progress=ProgressLine(), overwrite=args.overwrite)
    print_summary(result)
    return 0


def _eyes(text: str | None) -> dict | None:
    if text is None:
        return None
    try:
        x1, y1, x2, y2 = (float(value) for value in text.split(","))
    except ValueError:
        raise JokerError(f"--eyes {text!r} is not four numbers", "write --eyes X1,Y1,X2,Y2 in photo pixels") from None
    return {"eyes": [[x1, y1], [x2, y2]]}


def print_summary(result) -> None:
    figures = result.figures
    psnr = figures.get("held_out_psnr_db")
    print(f"wrote {result.folder}/")
    print(f"  head.glb (+ head.obj/.mtl/.png): {figures['mesh']['faces']} faces, "
          f"{'watertight' if figures['mesh']['watertight'] else 'open'}")
    print("  turntable.png, previews/, metrics.json, log.txt, inputs/")
    print(f"  {figures['prior_evaluations']} prior evaluations, {figures['nerf_steps']} field steps, "
          f"{figures['wall_seconds']:.0f} s"
          + (f"; held-out PSNR {psnr:.1f} dB" if psnr is not None else "")
          + f"; face Chamfer {figures['face_chamfer_percent_of_head_height']:.2f}% of head height")

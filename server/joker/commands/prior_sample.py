"""`joker prior-sample`: 2D images from the diffusion prior for chosen views of a posed head."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from joker.commands.render_normals import add_model_argument, add_pose_arguments

HELP = "Sample 2D images from the Joker diffusion prior: reference photo + pose + prompt -> one image per view."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=Path, required=True,
                        help="prior weights: our folder, or the released .bin with --sd15")
    parser.add_argument("--sd15", type=Path, help="SD1.5 folder (tokenizer and configs for a released checkpoint)")
    parser.add_argument("--vae", type=Path, help="separate VAE folder (e.g. sd-vae-ft-mse)")
    parser.add_argument("--reference", type=Path, required=True, help="square portrait crop of the person")
    parser.add_argument("--prompt", default="", help="what the expression looks like, e.g. 'a man screaming'")
    parser.add_argument("--negative-prompt", default="", help="the unconditional half's text (default: empty)")
    parser.add_argument("--cfg", type=float, default=3.0, help="text guidance scale, >= 1 (default: 3.0)")
    parser.add_argument("--steps", type=int, default=25, help="denoising steps (default: 25, the published demo's)")
    parser.add_argument("--sampler", choices=("pndm", "ddim"), default="pndm",
                        help="pndm (the authors' 2D sampler, SD1.5's config) or ddim (default: pndm)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    source = parser.add_argument_group("views: a folder from `joker render-normals`, or rendered here")
    source.add_argument("--normals", type=Path, help="folder of view_NNN.png normal maps + cameras.json")
    add_model_argument(source)
    add_pose_arguments(parser)
    source.add_argument("--views", default="grid:1x1", help="view set to render (default: grid:1x1, the front)")
    source.add_argument("--mode", choices=("full", "face"), default="face",
                        help="normal maps of the face region (as the released prior was trained) or the full head")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--precision", default="auto", help="auto, fp32, fp16 or bf16 (default: auto)")
    parser.add_argument("--chunk-size", type=int, default=4, help="views per network pass (default: 4)")
    parser.add_argument("--out", type=Path, required=True, help="output folder (must be new or empty)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty output folder")


def run(args: argparse.Namespace) -> int:
    import torch

    from joker.commands.render_normals import load_model, rig_params_from_args
    from joker.prior.base import Condition
    from joker.prior.diffusion.inputs import load_reference_photo, read_normals_folder, reference_image, render_views
    from joker.prior.diffusion.loading import open_prior
    from joker_core.png import encode_png
    from joker_core.errors import JokerError
    from joker_core.files import atomic_directory

    if args.steps < 1:
        raise JokerError(f"{args.steps} denoising steps", "use --steps >= 1")
    photo = load_reference_photo(args.reference)  # cheap checks before the weights load
    prior = open_prior(args.weights, args.sd15, args.vae, args.device, args.precision, args.chunk_size)
    size = prior.model.image_size
    if args.normals:
        views = read_normals_folder(args.normals)
    else:
        head = load_model(args.model)
        views = render_views(size, rig_params_from_args(args, head), args.views, args.mode, head)
    condition = Condition(reference_image(photo, size), args.prompt, args.negative_prompt, args.cfg)
    generator = torch.Generator().manual_seed(args.seed)
    images = prior.sample(views, condition, args.steps, generator, sampler=args.sampler)
    pixels = (images.permute(0, 2, 3, 1).cpu().numpy() * 255).round().astype("uint8")
    with atomic_directory(args.out, overwrite=args.overwrite) as staging:
        records = []
        for index, (image, camera) in enumerate(zip(pixels, views.cameras)):
            (staging / f"sample_{index:03d}.png").write_bytes(encode_png(image))
            records.append({"image": f"sample_{index:03d}.png", "camera": camera.to_dict()})
        settings = {"weights": str(args.weights), "prompt": args.prompt, "negative_prompt": args.negative_prompt,
                    "cfg": args.cfg, "sampler": args.sampler, "steps": args.steps, "seed": args.seed, "views": records}
        (staging / "samples.json").write_text(json.dumps(settings, indent=1))
    print(f"wrote {len(records)} images to {args.out} ({prior.evaluations.total} prior evaluations)")
    return 0

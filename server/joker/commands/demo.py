"""`joker demo`: the README's main job on the embedded default. The astronaut portrait that
ships with scikit-image becomes a screaming 3D head on the CPU, through the weight-free
projection prior: GLB, OBJ, turntable strip and metrics in one folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from joker_core.errors import JokerError

from .generate import print_summary

HELP = "Run the main job on the embedded default: a real portrait to a screaming textured head (CPU, no weights)."

DEMO_MARKER = Path("inputs") / "spec.json"  # what an earlier demo leaves, so a rerun may replace it


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("output/demo"), help="output folder (default: output/demo)")
    parser.add_argument("--preset", default="scream", help="expression preset (default: scream; see `joker info`)")
    parser.add_argument("--quality", default="preview", help="quality preset (default: preview)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N, mps or auto (default: cpu)")


def run(args: argparse.Namespace) -> int:
    from skimage import data

    from joker.api import generate
    from joker_core.presets import get_preset
    from joker_core.protocol import JobSpec

    from ._progress import ProgressLine

    earlier_demo = (args.out / DEMO_MARKER).is_file()
    if args.out.exists() and any(args.out.iterdir()) and not earlier_demo:
        raise JokerError(f"{args.out} holds files that are not an earlier demo's",
                         "pass --out with a new or empty folder")
    spec = JobSpec.from_dict({"preset": args.preset, "prompt": get_preset(args.preset).prompt,
                              "quality": args.quality, "device": args.device})
    print("photo: skimage.data.astronaut() (Eileen Collins, NASA, public domain)")
    result = generate(data.astronaut(), spec=spec, out_dir=args.out, progress=ProgressLine(), overwrite=True)
    print_summary(result)
    return 0

"""`joker demo`: the README's main job. Until the generation pipeline lands, it renders the
normal maps the prior would be driven by: the demo head screaming, on a small view grid."""

from __future__ import annotations

import argparse
from pathlib import Path

from . import render_normals

HELP = "Run the main job on the embedded default (for now: normal maps of the demo head screaming)."

GRID = (3, 3)  # azimuths x elevations


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("output/demo"), help="output folder (default: output/demo)")
    parser.add_argument("--size", type=int, default=512, help="image size in pixels (default: 512)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace any non-empty output folder (an earlier render's, with its "
                             "cameras.json, is always replaced)")


def run(args: argparse.Namespace) -> int:
    earlier_render = (args.out / "cameras.json").is_file()  # so `make demo` can run again
    argv = ["--preset", "scream", "--views", f"grid:{GRID[0]}x{GRID[1]}", "--size", str(args.size),
            "--device", args.device, "--out", str(args.out)]
    if args.overwrite or earlier_render:
        argv.append("--overwrite")
    parser = argparse.ArgumentParser()
    render_normals.add_arguments(parser)
    written = render_normals.render_to_folder(parser.parse_args(argv), contact_sheet_columns=GRID[0])
    views = GRID[0] * GRID[1]
    print(f"rendered the demo head (preset 'scream') from {views} views into {args.out}:")
    print(f"  {written[0].name} .. {written[-4].name}: encoded normal maps, with mask_NNN.png beside each")
    print("  cameras.json: every view's camera, azimuth and elevation, the rig and the pose")
    print(f"  contact_sheet.png: all {views} views, highest on top  ->  {written[-1]}")
    return 0

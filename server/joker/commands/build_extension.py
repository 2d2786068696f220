"""`joker build-extension`: the installable Blender extension zip."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "Build and validate the Blender extension zip (add-on + manifest + bundled core wheel)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=Path("dist"), help="folder for the zip (default: dist)")
    parser.add_argument("--blender-ext", type=Path, default=None,
                        help="Blender's blender_ext.py (default: the one inside the bpy module)")


def run(args: argparse.Namespace) -> int:
    from joker.packaging.extension import build_extension

    zip_path = build_extension(args.out, args.blender_ext)
    print(f"built and validated {zip_path}")
    print(f"install: Blender > Preferences > Get Extensions > Install from Disk > {zip_path}")
    return 0

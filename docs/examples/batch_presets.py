"""Headless batch example: one Joker head per expression preset, keyed on successive frames.

    python docs/examples/batch_presets.py --photo me.jpg --out /tmp/joker-batch
    python docs/examples/batch_presets.py --photo me.jpg --out /tmp/joker-batch --sequence
    python docs/examples/batch_presets.py --photo me.jpg --out /tmp/joker-batch --offline

Runs with the `bpy` module (pip install bpy) or inside Blender
(`blender -b -P docs/examples/batch_presets.py -- --photo ...`). With a server running
(`joker serve`), each preset is generated and imported; --sequence sends the keyed frames
as one sequence job instead (warm-started frame to frame, heads keyed to show on their
frames); with --offline it stops before the network and writes the in-scene normal maps
each job would send. The .blend is saved in --out.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

import bpy
import addon_utils  # importable only once bpy is loaded

REPO = Path(__file__).resolve().parents[2]


def enable_addon() -> str:
    """The installed extension if there is one, else the add-on from this checkout."""
    installed = "bl_ext.user_default.joker_blender"
    if installed not in {module.__name__ for module in addon_utils.modules()}:
        sys.path.insert(0, str(REPO))
        installed = "joker_blender"
    if addon_utils.enable(installed, default_set=True) is None:
        raise SystemExit("the Joker add-on is neither installed nor found next to this script")
    return installed


def parse_args() -> argparse.Namespace:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, required=True, help="reference photo (JPEG or PNG)")
    parser.add_argument("--out", type=Path, required=True, help="folder for results and the .blend")
    parser.add_argument("--presets", default="neutral,scream,wink", help="comma-separated preset names")
    parser.add_argument("--flame", default="demo", help="FLAME model file, or 'demo' (default)")
    parser.add_argument("--server", default=None, help="server URL (default: the add-on's preference)")
    parser.add_argument("--token", default=None, help="access token (default: the local server's token file)")
    parser.add_argument("--views", default="4x3", help="view grid, azimuth x elevation (default 4x3)")
    parser.add_argument("--size", type=int, default=256, help="normal-map size in pixels (default 256)")
    parser.add_argument("--sequence", action="store_true", help="one sequence job over the keyed frames")
    parser.add_argument("--offline", action="store_true", help="no server: write the normal maps instead")
    return parser.parse_args(argv)


def main() -> int:
    args = parse_args()
    bpy.ops.wm.read_factory_settings(use_empty=True)
    module = enable_addon()
    api = importlib.import_module(f"{module}.api")
    from joker_core.errors import JokerError

    args.out.mkdir(parents=True, exist_ok=True)
    api.configure(server_url=args.server, token=args.token, results_dir=str(args.out / "results"))
    scene = bpy.context.scene
    n_azimuth, n_elevation = (int(n) for n in args.views.lower().split("x"))
    views = {"views_azimuth": n_azimuth, "views_elevation": n_elevation, "view_size": args.size}
    try:
        api.add_head(args.flame)
        api.set_reference(args.photo)
        presets = [preset.strip() for preset in args.presets.split(",")]
        for frame, preset in enumerate(presets, start=1):
            scene.frame_set(frame)
            api.apply_preset(preset, keyframe=True)
            if args.offline:
                folder = api.write_normal_maps(args.out / f"normals_{preset}", **views)
                print(f"frame {frame} {preset}: normal maps in {folder}")
            elif not args.sequence:
                head = api.generate(quality="preview", **views)
                print(f"frame {frame} {preset}: {head.name} from {head['joker_job_folder']}")
        if args.sequence and not args.offline:
            # One prompt for every frame (each preset's own prompt would fit only its frame).
            heads = api.generate_sequence(1, len(presets), 1, quality="preview", prompt="", **views)
            for head in sorted(heads.objects, key=lambda obj: obj["joker_frame"]):
                print(f"frame {head['joker_frame']} {presets[head['joker_frame'] - 1]}: {head.name} "
                      f"from {head['joker_job_folder']}")
    except JokerError as error:
        print(f"joker: {error}", file=sys.stderr)
        return 1
    bpy.ops.wm.save_as_mainfile(filepath=str(args.out / "joker_batch.blend"))
    return 0


if __name__ == "__main__":
    sys.exit(main())

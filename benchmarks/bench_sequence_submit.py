"""How long Generate Sequence keeps Blender's UI thread busy before the job is sent, side by
side in one Blender: every frame's normal maps rendered here (*Blender normal maps per
frame*, the only way before) against each frame's rig parameters alone (the default now:
the server renders the maps). A keyed 3-preset expression over the frames; wall and CPU time
on the UI thread per frame, and the ratio.

    python benchmarks/bench_sequence_submit.py [--frames 24] [--rendered-frames 3] [--grid 4 3] [--size 256]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from blender_runner import ENABLE_ADDON, REPORT, run_blender  # noqa: E402

SCRIPT = REPORT + ENABLE_ADDON + """
import json, time
from joker_blender import api, submission
args = json.loads(sys.argv[-1])
api.add_head()
api.set_reference(args["photo"])
scene, settings = bpy.context.scene, bpy.context.scene.joker
settings.views_azimuth, settings.views_elevation = args["grid"]
settings.view_size = args["size"]
for frame, preset in ((1, "neutral"), (args["frames"] // 2, "surprise"), (args["frames"], "scream")):
    scene.frame_set(frame)
    api.apply_preset(preset, keyframe=True)
timings = {}
for rendered, frames in ((True, args["rendered_frames"]), (False, args["frames"])):
    settings.sequence_normal_maps = rendered
    start, start_cpu = time.perf_counter(), time.thread_time()
    submission.build_sequence_submission(bpy.context, range(1, frames + 1))
    timings["rendered" if rendered else "parameters"] = {
        "frames": frames, "wall_ms_per_frame": (time.perf_counter() - start) * 1000 / frames,
        "cpu_ms_per_frame": (time.thread_time() - start_cpu) * 1000 / frames}
report(**timings)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24, help="frames sent with rig parameters only")
    parser.add_argument("--rendered-frames", type=int, default=3, help="frames rendered in Blender (slow)")
    parser.add_argument("--grid", type=int, nargs=2, default=(4, 3), help="views across azimuth and elevation")
    parser.add_argument("--size", type=int, default=256, help="normal-map size in pixels")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "photo.png"
        Image.new("RGB", (96, 96), (200, 120, 90)).save(photo)
        settings = {"photo": str(photo), "frames": args.frames, "rendered_frames": args.rendered_frames,
                    "grid": list(args.grid), "size": args.size}
        result = run_blender(SCRIPT, Path(folder), json.dumps(settings), timeout=1800)
    views = args.grid[0] * args.grid[1]
    for name, label in (("rendered", f"normal maps rendered in Blender ({views} views, {args.size} px)"),
                        ("parameters", "rig parameters only (the server renders)")):
        row = result[name]
        print(f"{label:55s} {row['wall_ms_per_frame']:9.1f} ms wall  {row['cpu_ms_per_frame']:8.1f} ms CPU "
              f"per frame (over {row['frames']} frames)")
    ratio = result["rendered"]["wall_ms_per_frame"] / result["parameters"]["wall_ms_per_frame"]
    print(f"UI thread busy per frame, rendered / parameters only: {ratio:.0f}x (wall)")


if __name__ == "__main__":
    main()

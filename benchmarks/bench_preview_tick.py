"""The add-on's timer tick that applies a job's preview, before and after the engine made
its previews panel-sized, side by side in one Blender: for each quality preset, its largest
preview strip as the engine wrote it before (4 views at the render width, 2 rows) and as it
writes it now (each view at most PREVIEW_TILE px). Median of 7 ticks, wall and CPU time on
Blender's UI thread (noise strips: PNG's slowest case to decode). Goal: every preview tick
<= 20 ms (docs/blender.md).

    python benchmarks/bench_preview_tick.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS))
from blender.job_scripts import PREVIEW_TICK  # noqa: E402  (the tests' tick timing)
from blender_runner import ENABLE_ADDON, REPORT, run_blender  # noqa: E402

from joker.distill.preview import PREVIEW_VIEWS, preview_strip  # noqa: E402
from joker.distill.schedule import PRESETS  # noqa: E402
from joker_core.files import atomic_write_bytes  # noqa: E402
from joker_core.png import encode_png  # noqa: E402

BUDGET_MS = 20.0

SCRIPT = REPORT + ENABLE_ADDON + PREVIEW_TICK + """
import json
from pathlib import Path
args = json.loads(sys.argv[-1])
scene = bpy.context.scene
report(**{path: [preview_tick(scene.name, Path(path)) for _ in range(args["repeats"])] for path in args["paths"]})
"""


def uncapped_strip(renders: torch.Tensor) -> torch.Tensor:
    """The strip as the engine wrote it before: each view at the render's own size."""
    rows = [torch.cat(list(renders[:PREVIEW_VIEWS]), -1)] * 2
    return (torch.cat(rows, -2).permute(1, 2, 0) * 255).round().byte().numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    options = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as folder:
        rows = []
        for name, chosen in PRESETS.items():
            width = max(width for _, width in chosen.schedule.resolutions)
            renders = torch.rand(PREVIEW_VIEWS, 3, width, width, generator=generator)
            pair = []
            for kind, strip in (("before", uncapped_strip(renders)), ("now", preview_strip(renders, renders))):
                path = atomic_write_bytes(Path(folder) / f"{name}_{kind}.png", encode_png(strip))
                pair.append((str(path), f"{strip.shape[1]}x{strip.shape[0]}"))
            rows.append((name, width, pair))
        paths = [path for _, _, pair in rows for path, _ in pair]
        ticks = run_blender(SCRIPT, Path(folder), json.dumps({"paths": paths, "repeats": options.repeats}),
                            timeout=600)
    print(f"preview tick, median of {options.repeats} (wall / CPU on the UI thread, ms); budget {BUDGET_MS:.0f} ms")
    print(f"{'preset':10} {'render':>6}  {'before':>9} {'wall':>6} {'cpu':>6}  {'now':>7} {'wall':>6} {'cpu':>6}"
          "  wall ratio")
    worst = 0.0
    for name, width, ((before, before_size), (now, now_size)) in rows:
        old = [statistics.median(column) for column in zip(*ticks[before])]
        new = [statistics.median(column) for column in zip(*ticks[now])]
        worst = max(worst, new[0])
        print(f"{name:10} {width:>6}  {before_size:>9} {old[0]:6.1f} {old[1]:6.1f}  {now_size:>7} {new[0]:6.1f} "
              f"{new[1]:6.1f}  {old[0] / new[0]:5.1f}x")
    print(f"worst preview tick now: {worst:.1f} ms ({'within' if worst <= BUDGET_MS else 'OVER'} the budget)")


if __name__ == "__main__":
    main()

"""What splitting a sequence into segments costs, on a local Ray instance with 2 CPUs:
the same keyframed sequence run whole (one Ray task, frame after frame) and split into 2
segments (two tasks at once; the second segment's first frame starts cold).

Printed side by side: wall time, prior evaluations in all, and the flicker at the border:
the mean distance between the meshes of the two frames on either side of it, against the
same two frames in the whole run. Test-sized engine (tests/sequence/sequence_engine.py).

    .venv/bin/python benchmarks/bench_segments.py [--frames 6]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path.insert(0, str(TESTS / "sequence"))


def mesh_distance(folder: Path, entry: dict, other_folder: Path, other: dict) -> float:
    import trimesh
    from scipy.spatial import cKDTree

    a = np.asarray(trimesh.load(folder / entry["obj"], force="mesh").vertices)
    b = np.asarray(trimesh.load(other_folder / other["obj"], force="mesh").vertices)
    return float((cKDTree(b).query(a)[0].mean() + cKDTree(a).query(b)[0].mean()) / 2)


def frames(folders: list[Path]) -> dict[int, tuple[Path, dict]]:
    found = {}
    for folder in folders:
        for entry in json.loads((folder / "sequence.json").read_text())["frames"]:
            found[entry["frame"]] = (folder, entry)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6)
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS / "sequence"), str(TESTS), os.environ.get("PYTHONPATH", "")])
    import ray
    from skimage import data

    from joker.segments import even_starts, generate_segments
    from joker_core.png import encode_png
    from joker_core.protocol import SequenceSpec
    from sequence_engine import TINY_SEQUENCE

    # Each expression held for two frames, so the border (the middle) falls inside a hold,
    # where the whole run's warm frame is cheapest and the split's cold frame costs most.
    presets = ["neutral", "crooked_smile", "scream", "wink"]
    spec = SequenceSpec.from_dict({"job": {"quality": "preview", "device": "cpu", "seed": 5},
                                   "frames": [{"preset": presets[i // 2 % len(presets)]}
                                              for i in range(args.frames)]})
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as work:
            photo = Path(work) / "photo.png"
            photo.write_bytes(encode_png(data.astronaut()))
            runs = {}
            for name, starts in (("whole", [0]), ("2 segments", even_starts(args.frames, 2))):
                started = time.perf_counter()
                folders = generate_segments(photo, spec=spec, out_dir=Path(work) / name, starts=starts,
                                            ray_address="local", tuning=TINY_SEQUENCE)
                runs[name] = (time.perf_counter() - started, frames(folders))
            border = spec.frame_number(even_starts(args.frames, 2)[1])
            before = border - spec.frame_step
            for name, (seconds, found) in runs.items():
                evaluations = sum(entry["prior_evaluations"] for _, entry in found.values())
                flicker = mesh_distance(*found[before], *found[border])
                print(f"{name:<11} {args.frames} frames  wall {seconds:6.1f} s   prior evaluations {evaluations:5d}   "
                      f"frames {before}->{border}: mesh moves {flicker * 1000:.2f} mm")
            whole, split = runs["whole"], runs["2 segments"]
            print(f"split / whole: wall {split[0] / whole[0]:.2f}x, prior evaluations "
                  f"{sum(e['prior_evaluations'] for _, e in split[1].values()) / sum(e['prior_evaluations'] for _, e in whole[1].values()):.2f}x")
    finally:
        ray.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())

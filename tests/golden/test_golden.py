"""Golden outputs at test size: a refactor must leave a job's and a sequence's results as
they were, to float noise. A change that is meant to change results regenerates the file:

    JOKER_UPDATE_GOLDEN=1 python -m pytest -q tests/golden

and says so in its commit. What is compared: every figure of metrics.json that describes
the result (not timings), and a summary of each GLB's geometry and texture."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh
from skimage import data

sys.path.insert(0, str(Path(__file__).parent.parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "sequence"))

from joker.api import generate  # noqa: E402
from joker.sequence import generate_sequence  # noqa: E402
from joker_core.protocol import JobSpec, SequenceSpec  # noqa: E402
from sequence_engine import TINY_SEQUENCE  # noqa: E402
from tiny_engine import TINY  # noqa: E402

GOLDEN = Path(__file__).with_name("golden.json")
UPDATE = os.environ.get("JOKER_UPDATE_GOLDEN") == "1"
# Timings and anything measured on the clock differ run to run; the rest must not.
_CLOCK = ("seconds", "wall_seconds", "distill_seconds", "cpu_seconds")
JOB = JobSpec(preset="scream", quality="preview", device="cpu", seed=3)
SEQUENCE = SequenceSpec.from_dict({"job": {"quality": "preview", "device": "cpu", "seed": 5},
                                   "frames": [{"preset": "neutral"}, {"preset": "crooked_smile"}]})


def _figures(metrics: dict) -> dict:
    """metrics.json without the clock, flattened to name -> number."""
    flat = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if key not in _CLOCK:
                    walk(f"{prefix}{key}.", item)
        elif isinstance(value, (bool, int, float)) and value is not None:
            flat[prefix.rstrip(".")] = float(value)
    walk("", metrics)
    return flat


def _mesh(glb: Path) -> dict:
    mesh = trimesh.load(glb, force="mesh")
    texture = np.asarray(mesh.visual.material.baseColorTexture, dtype=np.float64)
    vertices = np.asarray(mesh.vertices, dtype=np.float64)
    return {"faces": float(len(mesh.faces)), "centroid": vertices.mean(0).tolist(),
            "spread": vertices.std(0).tolist(), "texture_mean": texture[..., :3].mean((0, 1)).tolist()}


def _summary(folder: Path) -> dict:
    return {"metrics": _figures(json.loads((folder / "metrics.json").read_text())), "mesh": _mesh(folder / "head.glb")}


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict:
    photo = data.astronaut()
    root = tmp_path_factory.mktemp("golden")
    job = generate(photo, spec=JOB, out_dir=root / "job", tuning=dataclasses.replace(TINY, benchmark_metrics=True))
    sequence = generate_sequence(photo, spec=SEQUENCE, out_dir=root / "sequence", tuning=TINY_SEQUENCE)
    found = {"job": _summary(job.folder), "sequence": [_summary(frame.folder) for frame in sequence.frames]}
    if UPDATE:
        GOLDEN.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    return found


def _close(found, expected, where: str) -> None:
    if isinstance(expected, dict):
        assert set(found) == set(expected), f"{where}: keys differ: {sorted(set(found) ^ set(expected))}"
        for key in expected:
            _close(found[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(found) == len(expected), where
        for index, (a, b) in enumerate(zip(found, expected)):
            _close(a, b, f"{where}[{index}]")
    else:  # float noise: threads and summation order, amplified a little by training
        assert math.isclose(found, expected, rel_tol=2e-3, abs_tol=2e-4), f"{where}: {found} != {expected}"


def test_a_job_gives_its_golden_result(results):
    _close(results["job"], json.loads(GOLDEN.read_text())["job"], "job")


def test_a_sequence_gives_its_golden_frames(results):
    _close(results["sequence"], json.loads(GOLDEN.read_text())["sequence"], "sequence")

"""The documented headless example (docs/examples/batch_presets.py) run as a user runs it:
`python docs/examples/batch_presets.py ...` with the bpy module, its own Blender user folder."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from blender_runner import REPO_ROOT

pytestmark = pytest.mark.blender

EXAMPLE = REPO_ROOT / "docs" / "examples" / "batch_presets.py"


def _example(tmp_path, photo, *args, timeout=240):
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"))
    return subprocess.run([sys.executable, str(EXAMPLE), "--photo", str(photo), "--out", str(tmp_path / "out"),
                           "--presets", "neutral,scream", "--views", "2x1", "--size", "64", *args],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp_path)


def _token(server):
    # One argument, as a token may start with "-" (which argparse takes for an option).
    return f"--token={server.token_file.read_text().strip()}"


def _decoded(folder, name):
    return np.asarray(Image.open(folder / name))


def test_offline_example_keys_presets_and_writes_the_normal_maps_a_job_would_send(tmp_path, photo):
    run = _example(tmp_path, photo, "--offline")
    assert run.returncode == 0, run.stderr[-2000:]
    out = tmp_path / "out"
    assert (out / "joker_batch.blend").stat().st_size > 0
    neutral, scream = out / "normals_neutral", out / "normals_scream"
    for folder in (neutral, scream):
        description = json.loads((folder / "cameras.json").read_text())
        assert description["source"] == "blender" and len(description["views"]) == 2
        assert _decoded(folder, "mask_000.png").astype(bool).mean() > 0.05  # the head is in view
    front_difference = np.abs(_decoded(neutral, "view_000.png").astype(int) - _decoded(scream, "view_000.png"))
    assert (front_difference.max(-1) > 30).mean() > 0.01  # the scream keyed on frame 2 opens the mouth
    scream_jaw = json.loads((scream / "cameras.json").read_text())["rig"]["jaw_pose"]
    assert scream_jaw[0] > 0.3


def test_example_reports_a_missing_photo_in_one_line_and_exits_1(tmp_path):
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "blender_user"))
    run = subprocess.run([sys.executable, str(EXAMPLE), "--photo", str(tmp_path / "missing.jpg"), "--out",
                          str(tmp_path / "out"), "--offline"], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 1
    assert "joker: reference photo" in run.stderr and "Fix: choose a photo" in run.stderr
    assert "Traceback" not in run.stderr


def test_example_generates_each_preset_against_a_real_server(serve, photo, tmp_path):
    # The server runs the small posed-head job; the engine's own round trip is test_generate's.
    server = serve("posed_head_job:generate")
    run = _example(tmp_path, photo, "--server", server.url, _token(server))
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("frame ")]
    assert [line.split()[:3] for line in lines] == [["frame", "1", "neutral:"], ["frame", "2", "scream:"]]
    job_folders = [line.rsplit(" from ", 1)[1] for line in lines]
    assert all(any(name.endswith(".glb") for name in os.listdir(folder)) for folder in job_folders)


def test_example_generates_the_keyed_presets_as_one_sequence(serve, photo, tmp_path):
    server = serve("posed_head_job:generate")
    run = _example(tmp_path, photo, "--sequence", "--server", server.url, _token(server))
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("frame ")]
    assert [line.split()[:3] for line in lines] == [["frame", "1", "neutral:"], ["frame", "2", "scream:"]]
    job_folders = {Path(line.rsplit(" from ", 1)[1]) for line in lines}
    assert [folder.name for folder in sorted(job_folders)] == ["frame_0001", "frame_0002"]  # one job's frames
    assert len({folder.parent.parent for folder in job_folders}) == 1
    assert all((folder / "head.glb").is_file() for folder in job_folders)


@pytest.mark.slow  # the example against the engine; the engine's Blender round trip stays in make test
def test_example_generates_with_the_engine(serve, portrait, tmp_path):
    server = serve("tiny_engine:generate")  # the real engine at test size
    run = _example(tmp_path, portrait, "--presets", "scream", "--server", server.url, _token(server),
                   timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    lines = [line for line in run.stdout.splitlines() if line.startswith("frame ")]
    assert len(lines) == 1 and lines[0].startswith("frame 1 scream: ")
    assert (Path(lines[0].rsplit(" from ", 1)[1]) / "head.glb").is_file()

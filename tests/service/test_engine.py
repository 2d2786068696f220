"""The server running the real engine (projection prior, CPU): a job starts, reports
distillation progress and is cancelled within 2 s; a job the engine refuses fails with the
engine's own message; and at test size (tiny_engine: joker.api.generate with a tiny
tuning) a whole job finishes and its head can be downloaded."""

from __future__ import annotations

import time

import pytest
from skimage import data

pytest.importorskip("joker.api")

from service_harness import Server, wait_until  # noqa: E402
from joker_core.client import JobFailed  # noqa: E402
from joker_core.png import encode_png  # noqa: E402
from joker_core.protocol import JobState  # noqa: E402

TINY = {"preset": "scream", "quality": "preview", "views": {"grid": [2, 1], "size": 32}}


def _engine_server(tmp_path_factory, job_function: str):
    running = Server(tmp_path_factory.mktemp("engine"), "--job-function", job_function, "--device", "cpu").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    yield from _engine_server(tmp_path_factory, "joker.api:generate")


@pytest.fixture(scope="module")
def tiny_engine(tmp_path_factory):
    yield from _engine_server(tmp_path_factory, "tiny_engine:generate")


@pytest.fixture(scope="module")
def portrait() -> bytes:
    return encode_png(data.astronaut())


def test_a_real_job_reports_distillation_progress_and_cancels_within_two_seconds(engine, portrait):
    client = engine.client()
    job = client.submit(TINY, portrait)
    wait_until(lambda: client.status(job.id).progress >= 0.05, timeout=240)  # torch import, rig, prior
    running = client.status(job.id)
    assert running.state is JobState.RUNNING and running.stage in ("distill", "stage 1: one-step targets")
    asked = time.monotonic()
    client.cancel(job.id)
    wait_until(lambda: client.status(job.id).state.finished, timeout=5)
    assert client.status(job.id).state is JobState.CANCELLED and time.monotonic() - asked < 2.0


def test_a_job_the_engine_refuses_fails_with_its_message(engine, portrait):
    client = engine.client()
    job = client.submit({**TINY, "prior": {"name": "joker", "weights": "/nowhere/prior.bin"}}, portrait)
    with pytest.raises(JobFailed) as failed:
        client.wait(job.id, timeout=240)
    status = failed.value.status
    assert status.state is JobState.FAILED and "Fix:" in status.error and "Traceback" not in status.error
    assert any(name.startswith("failed/") for name in status.artifacts)  # the engine's log of the run


def test_a_whole_job_finishes_and_its_head_downloads(tiny_engine, portrait, tmp_path):
    import trimesh

    client = tiny_engine.client()
    job = client.submit({"preset": "scream", "quality": "preview"}, portrait)
    stages = []
    done = client.wait(job.id, on_progress=lambda event: stages.append(event.stage), timeout=300)
    assert done.state is JobState.SUCCEEDED
    assert {"head.glb", "head.obj", "turntable.png", "metrics.json", "log.txt"} <= set(done.artifacts)
    assert "mesh" in stages and any(stage.startswith("stage 2") for stage in stages)
    glb = client.download(job.id, "head.glb", tmp_path / "head.glb")
    assert trimesh.load(glb, force="mesh").visual.material.baseColorTexture is not None

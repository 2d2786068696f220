"""`joker serve --executor ray` as a user runs it: a real server process on loopback that
joins the tests' Ray instance, killed with -9 mid-job and started again."""

from __future__ import annotations

import pytest

import time

from joker_core.protocol import JobState
from service_harness import Server, png_bytes, wait_until


@pytest.mark.slow  # `make test-slow`: over the suite's 5-minute budget on CI's 2 cores
def test_a_ray_server_killed_mid_job_marks_it_interrupted_and_a_requeue_finishes_it(ray_cluster, tmp_path):
    options = ("--executor", "ray", "--ray-address", ray_cluster, "--job-function", "timed_job:generate")
    server = Server(tmp_path, *options).start()
    try:
        client = server.client()
        health = client.health()
        assert (health["executor"], health["slots"]) == ("ray", 2)
        job = client.submit({"prompt": "steps=600 step_s=0.01", "quality": "preview"}, png_bytes())
        wait_until(lambda: client.status(job.id).progress > 0, 30)
    finally:
        server.stop(kill=True)
    server = Server(tmp_path, *options).start()  # same data folder: the restarted server
    try:
        client = server.client()
        status = client.status(job.id)
        assert status.state is JobState.INTERRUPTED and "re-queue" in status.error
        client.requeue(job.id)
        deadline = time.monotonic() + 60
        while not (status := client.status(job.id)).state.finished:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status.state is JobState.SUCCEEDED, status.error
        assert {"head.obj", "interval.json"} <= set(status.artifacts)
        assert client.download(job.id, "head.obj", tmp_path / "head.obj").read_text().startswith("v ")
    finally:
        server.stop()

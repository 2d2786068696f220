"""The HTTP API against a real `joker serve` on a loopback port, running the demo job."""

from __future__ import annotations

import json
import os
import signal
import time

import httpx
import numpy as np
import pytest

from service_harness import Server, b64, png_bytes, wait_until
from demo_job import TETRAHEDRON_OBJ
from joker.service.app import _weights_status
from joker_core.client import (Conflict, InvalidRequest, JobFailed, JokerClient, NotFound,
                               PayloadTooLarge, Unauthorized)
from joker_core.protocol import JobState

CAMERA = {"c2w": np.eye(4).tolist(), "fx": 40.0, "fy": 40.0, "cx": 12.0, "cy": 8.0, "width": 24, "height": 16}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = Server(tmp_path_factory.mktemp("api"), "--max-upload-mb", "1").start()
    yield running
    running.stop()


@pytest.fixture
def client(server) -> JokerClient:
    return server.client()


@pytest.fixture
def http(server):
    token = server.token_file.read_text().strip()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as session:
        yield session


def test_a_job_runs_to_the_end_with_progress_previews_and_downloadable_outputs(client, photo, tmp_path):
    events = []
    job = client.submit({"prompt": "steps=4", "seed": 7}, photo)
    assert job.state is JobState.QUEUED
    done = client.wait(job.id, on_progress=events.append)
    assert done.state is JobState.SUCCEEDED and done.progress == 1.0
    assert [(e.stage, e.progress) for e in events] == [("prepare", 0.0)] + [("distill", p) for p in (0.25, 0.5, 0.75, 1)]
    assert [e.preview for e in events[1:]] == [f"live/step_{i:03d}.png" for i in range(4)]
    assert {"head.obj", "metrics.json", "live/step_003.png"} <= set(done.artifacts)
    paths = client.download_all(job.id, tmp_path)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics == {"steps": 4, "seed": 7, "reference_size": [32, 32], "views": 0}
    assert (tmp_path / "head.obj").read_text() == TETRAHEDRON_OBJ
    assert len(paths) == len(done.artifacts)


def test_event_stream_starts_with_status_and_ends_with_the_final_status(client, photo):
    job = client.submit({"prompt": "steps=3 step_s=0.05"}, photo)
    events = list(client.events(job.id))
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "status" and kinds[-1] == "status"
    assert events[-1][1]["state"] == "succeeded"
    assert kinds.count("preview") >= 1 and kinds.count("progress") >= 1
    progress = [data["progress"] for kind, data in events if kind == "progress"]
    assert progress == sorted(progress)


def test_blender_normal_maps_reach_the_job_and_are_checked_against_their_cameras(client, photo):
    views = [{"camera": CAMERA, "normal_map": "view_000.png"}, {"camera": CAMERA, "normal_map": "view_001.png"}]
    maps = {"view_000.png": png_bytes((24, 16)), "view_001.png": png_bytes((24, 16))}
    done = client.wait(client.submit({"blender_views": views}, photo, normal_maps=maps).id)
    assert json.loads(_artifact(client, done.id, "metrics.json"))["views"] == 2
    with pytest.raises(InvalidRequest) as wrong_size:
        client.submit({"blender_views": views}, photo, normal_maps={**maps, "view_001.png": png_bytes((16, 16))})
    assert wrong_size.value.field == "normal_maps.view_001.png" and "24x16" in str(wrong_size.value)
    with pytest.raises(InvalidRequest) as missing:
        client.submit({"blender_views": views}, photo, normal_maps={"view_000.png": maps["view_000.png"]})
    assert missing.value.field == "spec.blender_views[1].normal_map"


def _artifact(client: JokerClient, job_id: str, name: str) -> bytes:
    with client._request("GET", f"/v1/jobs/{job_id}/artifacts/{name}") as response:
        return response.read()


def test_info_reports_the_priors_and_the_queue(client, server):
    info = client.info()
    assert info["protocol"] == 1 and info["queue_length"] == 0 and info["worker_pid"] > 0
    priors = {prior["name"]: prior for prior in info["priors"]}
    assert priors["projection"]["ready"] and not priors["joker"]["ready"]
    assert "--joker-weights" in priors["joker"]["problem"]
    assert 0 < info["memory"]["available_bytes"] <= info["memory"]["total_bytes"]


def test_joker_weights_that_are_not_there_are_reported_without_loading_anything(tmp_path):
    ready, problem, _ = _weights_status(str(tmp_path / "prior.bin"))
    assert not ready and "missing or unreadable" in problem


def test_every_route_but_health_needs_the_token(server, photo):
    anonymous = httpx.Client(base_url=server.url, timeout=10)
    assert anonymous.get("/v1/health").json()["status"] == "ok"
    for method, path in [("GET", "/v1/info"), ("GET", "/v1/jobs"), ("POST", "/v1/jobs"),
                         ("GET", "/v1/openapi.json"), ("GET", "/v1/jobs/x/events")]:
        response = anonymous.request(method, path, headers={"Authorization": "Bearer wrong-token-wrong-token"})
        assert response.status_code == 401, path
        assert response.json()["error"]["field"] == "authorization"
    with pytest.raises(Unauthorized):
        JokerClient(server.url, token="wrong-token-wrong-token").jobs()
    assert oct(server.token_file.stat().st_mode & 0o777) == "0o600"
    assert httpx.get(f"{server.url}/docs").status_code == 404  # no unauthenticated API pages


@pytest.mark.parametrize("body, status, field", [
    ({"spec": {}, "reference": b64(b"GIF89a" + bytes(100))}, 415, "reference"),
    ({"spec": {}, "reference": b64(png_bytes()[:60])}, 422, "reference"),
    ({"spec": {}, "reference": "not base64!"}, 422, "reference"),
    ({"spec": {"quality": "ultra"}, "reference": b64(png_bytes())}, 422, "spec.quality"),
    ({"spec": {"views": {"grid": [4, 0]}}, "reference": b64(png_bytes())}, 422, "spec.views.grid[1]"),
    ({"spec": {"device": "cuda:3"}, "reference": b64(png_bytes())}, 422, "spec.device"),
    ({"spec": {}, "reference": b64(png_bytes()), "priority": 1000}, 422, "priority"),
    ({"spec": {}, "reference": b64(png_bytes()), "colour": 1}, 422, "colour"),
    ({"reference": b64(png_bytes())}, 422, "spec"),
    ({"spec": {}, "reference": b64(png_bytes((4100, 4100)))}, 413, "reference"),  # over 4096² pixels
])
def test_bad_submissions_are_refused_naming_the_field_and_the_fix(http, body, status, field):
    response = http.post("/v1/jobs", json=body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field and error["fix"]


def test_an_oversized_upload_is_refused_before_it_is_read(http, client):
    response = http.post("/v1/jobs", content=b"x" * (2 * 2**20), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["field"] == "body"
    with pytest.raises(PayloadTooLarge, match="--max-upload-mb"):
        client.submit({}, os.urandom(2**20))


def test_pixel_bombs_are_refused_from_the_header(http):
    response = http.post("/v1/jobs", json={"spec": {}, "reference": b64(_png_claiming(60000, 60000))})
    assert response.status_code == 413 and response.json()["error"]["field"] == "reference"


def _png_claiming(width: int, height: int) -> bytes:
    """A small PNG whose header claims a huge size (valid CRC, so only the size is wrong)."""
    import struct
    import zlib

    data = bytearray(png_bytes((1, 1)))
    ihdr = struct.pack(">II", width, height) + bytes(data[24:29])
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(data)


def test_unknown_jobs_and_artifacts_are_404_and_names_never_escape_the_job_folder(client, http, photo):
    with pytest.raises(NotFound):
        client.status("no-such-job")
    done = client.wait(client.submit({"prompt": "steps=1"}, photo).id)
    for name in ["../../token", "..%2F..%2Ftoken", "%2Fetc%2Fpasswd", ".hidden", "live/../../../token"]:
        response = http.get(f"/v1/jobs/{done.id}/artifacts/{name}")
        assert response.status_code == 404, name
    assert http.get(f"/v1/jobs/{done.id}/artifacts/head.obj").status_code == 200


def test_cancel_rules_queued_running_and_finished(client, photo):
    running = client.submit({"prompt": "steps=200 step_s=0.05"}, photo)
    queued = client.submit({"prompt": "steps=1"}, photo)
    wait_until(lambda: client.status(running.id).state is JobState.RUNNING)
    assert client.cancel(queued.id).state is JobState.CANCELLED
    asked = time.monotonic()
    client.cancel(running.id)
    with pytest.raises(JobFailed) as ended:
        client.wait(running.id)
    assert ended.value.status.state is JobState.CANCELLED and time.monotonic() - asked < 2.0
    with pytest.raises(Conflict):
        client.cancel(running.id)


def test_a_job_that_ignores_cancel_is_stopped_within_two_seconds(client, photo):
    job = client.submit({"prompt": "steps=400 step_s=0.05 ignore_cancel=1"}, photo)
    wait_until(lambda: client.status(job.id).progress > 0)
    asked = time.monotonic()
    client.cancel(job.id)
    wait_until(lambda: client.status(job.id).state.finished)
    assert client.status(job.id).state is JobState.CANCELLED and time.monotonic() - asked < 2.0
    assert client.wait(client.submit({"prompt": "steps=1"}, photo).id).state is JobState.SUCCEEDED


@pytest.mark.parametrize("fail, expected", [
    ("user", "the demo job was told to fail"),
    ("bug", "ZeroDivisionError: demo bug"),
    ("oom", "the device ran out of memory"),
    ("host_oom", "the device ran out of memory"),  # torch's CPU allocator: a plain RuntimeError
    ("crash", "worker process died"),
])
def test_a_failing_job_fails_readably_and_the_next_job_runs(client, photo, fail, expected):
    worker_before = client.info()["worker_pid"]
    with pytest.raises(JobFailed) as failed:
        client.wait(client.submit({"prompt": f"steps=2 fail={fail}"}, photo).id)
    assert failed.value.status.state is JobState.FAILED and expected in failed.value.status.error
    assert "Fix:" in failed.value.status.error
    if fail == "bug":
        assert "logs/traceback.txt" in failed.value.status.artifacts
    assert client.wait(client.submit({"prompt": "steps=1"}, photo).id).state is JobState.SUCCEEDED
    replaced = client.info()["worker_pid"] != worker_before
    assert replaced is (fail in ("oom", "host_oom", "crash"))  # a fresh worker after OOM releases device memory


def test_killing_the_worker_fails_only_its_job(client, photo):
    job = client.submit({"prompt": "steps=400 step_s=0.05"}, photo)
    wait_until(lambda: client.status(job.id).progress > 0)
    os.kill(client.info()["worker_pid"], signal.SIGKILL)
    with pytest.raises(JobFailed) as failed:
        client.wait(job.id, timeout=10)
    assert "killed by signal 9" in failed.value.status.error
    assert client.wait(client.submit({"prompt": "steps=1"}, photo).id).state is JobState.SUCCEEDED
    assert client.health()["status"] == "ok"


def test_higher_priority_runs_first_then_first_come_first_served(client, photo):
    blocker = client.submit({"prompt": "steps=10 step_s=0.05"}, photo)
    low, normal, high = (client.submit({"prompt": "steps=1"}, photo, priority=p) for p in (-5, 0, 5))
    for job in (blocker, low, normal, high):
        client.wait(job.id)
    started = {job.id: client.status(job.id).started_at for job in (low, normal, high)}
    assert started[high.id] < started[normal.id] < started[low.id]


def test_requeue_and_delete(client, http, photo, server):
    job = client.submit({"prompt": "steps=2 fail=user"}, photo)
    with pytest.raises(JobFailed):
        client.wait(job.id)
    with pytest.raises(Conflict):
        client.requeue(client.wait(client.submit({"prompt": "steps=1"}, photo).id).id)
    assert client.requeue(job.id).state is JobState.QUEUED
    with pytest.raises(JobFailed):  # same spec, same end; what matters: it ran again
        client.wait(job.id)
    client.delete(job.id)
    with pytest.raises(NotFound):
        client.status(job.id)
    assert not (server.data_dir / "jobs" / job.id).exists()


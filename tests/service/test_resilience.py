"""The server under abuse: killed with -9 mid-job and restarted, and 20 clients at once."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time

from service_harness import Server, png_bytes, wait_until
from joker_core.protocol import JobState


def _digests(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead too
        return stat.read().split(")")[-1].split()[0] != "Z"


def test_kill_9_mid_job_then_restart_loses_nothing(tmp_path):
    server = Server(tmp_path).start()
    client = server.client()
    finished = client.wait(client.submit({"prompt": "steps=2"}, png_bytes()).id)
    finished_files = _digests(tmp_path / "jobs" / finished.id / "outputs")
    running = client.submit({"prompt": "steps=400 step_s=0.05"}, png_bytes())
    queued = [client.submit({"prompt": "steps=1"}, png_bytes()) for _ in range(3)]
    wait_until(lambda: client.status(running.id).progress > 0)
    worker_pid = client.info()["worker_pid"]
    server.stop(kill=True)

    server.start()
    client = server.client()
    deadline = time.monotonic() + 5
    while _alive(worker_pid):  # the orphaned worker stops itself
        assert time.monotonic() < deadline, "the old worker outlived its server"
        time.sleep(0.1)
    interrupted = client.status(running.id)
    assert interrupted.state is JobState.INTERRUPTED and "server stopped" in interrupted.error
    for job in queued:
        assert client.wait(job.id, timeout=20).state is JobState.SUCCEEDED
    assert client.status(finished.id).state is JobState.SUCCEEDED
    assert _digests(tmp_path / "jobs" / finished.id / "outputs") == finished_files
    assert {job.id for job in client.jobs()} == {finished.id, running.id, *(job.id for job in queued)}

    assert client.requeue(running.id).state is JobState.QUEUED
    wait_until(lambda: client.status(running.id).progress > 0)  # it runs again, from scratch
    assert client.cancel(running.id).id == running.id
    wait_until(lambda: client.status(running.id).state is JobState.CANCELLED)
    server.stop()


def test_a_graceful_stop_interrupts_the_running_job_and_says_why(tmp_path):
    server = Server(tmp_path).start()
    client = server.client()
    job = client.submit({"prompt": "steps=400 step_s=0.05"}, png_bytes())
    wait_until(lambda: client.status(job.id).progress > 0)
    events = client.events(job.id)
    next(events)  # an open event stream must not hold the shutdown up
    stopping = time.monotonic()
    server.stop()  # SIGTERM; uvicorn re-raises it after its graceful shutdown
    assert time.monotonic() - stopping < 8
    server.start()
    status = server.client().status(job.id)
    assert status.state is JobState.INTERRUPTED and "server shut down" in status.error
    server.stop()


def test_twenty_concurrent_clients_all_jobs_finish_once(tmp_path):
    server = Server(tmp_path).start()
    results: dict[int, list] = {}
    errors = []

    def one_client(index: int) -> None:
        try:
            client = server.client()
            jobs = [client.submit({"prompt": "steps=2 step_s=0.01", "seed": index * 10 + k}, png_bytes())
                    for k in range(2)]
            finished = []
            for job in jobs:
                deadline = time.monotonic() + 60
                while not (status := client.status(job.id)).state.finished:  # polling, as Blender does
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                finished.append(status)
            results[index] = finished
        except Exception as error:  # reported below, with the client's number
            errors.append((index, error))

    threads = [threading.Thread(target=one_client, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not errors, errors
    statuses = [status for finished in results.values() for status in finished]
    assert len(statuses) == 40 and all(s.state is JobState.SUCCEEDED for s in statuses)
    listed = server.client().jobs(limit=1000)
    assert sorted(job.id for job in listed) == sorted(s.id for s in statuses)  # none lost, none duplicated
    seeds = [json.loads(server.client().download(s.id, "metrics.json", tmp_path / f"{s.id}.json").read_text())["seed"]
             for s in statuses]
    assert sorted(seeds) == sorted(index * 10 + k for index in range(20) for k in range(2))
    server.stop()


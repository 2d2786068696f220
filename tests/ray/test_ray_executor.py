"""The Ray executor against a real local Ray instance (2 CPUs: 2 slots), with the job store
on disk and the test job functions: what the local executor guarantees holds on Ray."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest

from joker_core.errors import JokerError
from joker_core.protocol import JobSpec, JobState
from joker.service.ray_executor import RayExecutor, RaySettings, plan_slots
from joker.service.store import JobStore
from joker.service.worker import EngineFunctions
from service_harness import png_bytes, wait_until

QUICK = "steps=3 step_s=0.01"
LONG = "steps=2000 step_s=0.01"


class Events:
    def __init__(self):
        self.seen: list[tuple[str, str, dict]] = []

    def __call__(self, job_id, kind, data):
        self.seen.append((job_id, kind, data))

    def of(self, job_id, kind):
        return [data for seen_id, seen_kind, data in self.seen if seen_id == job_id and seen_kind == kind]


def make(tmp_path, events=None, slots=None):
    store = JobStore(tmp_path / "jobs.sqlite3", tmp_path / "jobs")
    executor = RayExecutor(store, events or Events(), EngineFunctions("timed_job:generate"), "cpu", cancel_grace_s=1.0,
                           settings=RaySettings(slots=slots))
    executor.start()
    return store, executor


def submit(store, executor, prompt):
    job = store.create(JobSpec.from_dict({"prompt": prompt, "quality": "preview"}), {"reference.png": png_bytes()})
    executor.notify()
    return job.id


def ended(store, job_id, timeout=60.0):
    wait_until(lambda: store.get(job_id).state.finished, timeout)
    return store.get(job_id)


def worker_pid(store, events, job_id) -> int:
    wait_until(lambda: any(e["message"].startswith("pid=") for e in events.of(job_id, "progress")), 30)
    return next(int(e["message"][4:]) for e in events.of(job_id, "progress") if e["message"].startswith("pid="))


def test_four_jobs_on_two_slots_run_two_at_a_time_and_bring_their_files_back(ray_cluster, tmp_path):
    events = Events()
    store, executor = make(tmp_path, events)
    try:
        assert executor.slots == 2
        ids = [submit(store, executor, "steps=15 step_s=0.1") for _ in range(4)]
        statuses = [ended(store, job_id, 90) for job_id in ids]
    finally:
        executor.stop()
    assert [s.state for s in statuses] == [JobState.SUCCEEDED] * 4, [s.error for s in statuses]
    intervals = []
    for job_id, status in zip(ids, statuses):
        assert {"head.obj", "metrics.json", "interval.json"} <= set(status.artifacts)
        assert any(name.startswith("live/step_") for name in status.artifacts)  # previews streamed
        previews = [e["name"] for e in events.of(job_id, "preview")]
        assert previews and all((store.job_dir(job_id) / p).is_file() for p in previews)
        intervals.append(json.loads(store.artifact_path(job_id, "interval.json").read_text()))
    assert len({i["pid"] for i in intervals}) == 2  # two warm actors, reused
    edges = sorted([(i["start"], 1) for i in intervals] + [(i["end"], -1) for i in intervals])
    running, most = 0, 0
    for _, step in edges:
        running += step
        most = max(most, running)
    assert most == 2


@pytest.mark.slow  # Ray end to end; the four-job test stays in make test
def test_cancel_stops_a_job_within_2_s_even_one_that_ignores_it(ray_cluster, tmp_path):
    store, executor = make(tmp_path, slots=1)
    try:
        for prompt in (LONG, LONG + " ignore_cancel=1"):
            job_id = submit(store, executor, prompt)
            wait_until(lambda: store.get(job_id).progress > 0, 30)
            asked = time.monotonic()
            executor.cancel(job_id)
            assert ended(store, job_id, 5).state is JobState.CANCELLED
            assert time.monotonic() - asked < 2.0
        after = ended(store, submit(store, executor, QUICK))  # the slot took a new actor
        assert after.state is JobState.SUCCEEDED, after.error
    finally:
        executor.stop()


@pytest.mark.slow  # Ray end to end; the four-job test stays in make test
def test_a_killed_worker_fails_only_its_job_and_the_next_job_runs(ray_cluster, tmp_path):
    events = Events()
    store, executor = make(tmp_path, events)
    try:
        doomed, survivor = submit(store, executor, LONG), submit(store, executor, "steps=100 step_s=0.02")
        os.kill(worker_pid(store, events, doomed), signal.SIGKILL)
        status = ended(store, doomed, 30)
        assert status.state is JobState.FAILED
        assert "Ray worker running this job died" in status.error and "re-queue" in status.error
        assert ended(store, survivor).state is JobState.SUCCEEDED
        after = ended(store, submit(store, executor, QUICK))
        assert after.state is JobState.SUCCEEDED, after.error
    finally:
        executor.stop()


def test_slots_take_a_gpu_each_or_share_the_cpus_within_one_node():
    assert plan_slots({"GPU": 4, "CPU": 32}, None, "auto") == (4, {"num_gpus": 1, "num_cpus": 1})
    assert plan_slots({"GPU": 4, "CPU": 32}, 2, "cuda:1") == (2, {"num_gpus": 1, "num_cpus": 1})
    assert plan_slots({"GPU": 4, "CPU": 32}, 2, "cpu") == (2, {"num_cpus": 16})
    assert plan_slots({"CPU": 16}, 1, "auto", node_cpus=8) == (1, {"num_cpus": 8})  # two 8-CPU machines
    with pytest.raises(JokerError, match="has no GPU") as error:
        plan_slots({"CPU": 8}, None, "cuda")
    assert "--device cpu" in error.value.fix

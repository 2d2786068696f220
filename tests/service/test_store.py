"""The job store on its own: queue order, recovery, requeue, retention."""

from __future__ import annotations

import os
import time

import pytest

from joker_core.errors import JokerError
from joker_core.protocol import JobSpec, JobState, ProgressEvent
from joker.service.errors import Conflict, NotFound
from joker.service.store import JobStore


@pytest.fixture
def store(tmp_path):
    store = JobStore(tmp_path / "jobs.sqlite3", tmp_path / "jobs")
    yield store
    store.close()


def _submit(store: JobStore, priority: int = 0, keep: bool = False, size: int = 10) -> str:
    return store.create(JobSpec.from_dict({"seed": 0}), {"reference.png": b"x" * size}, priority, keep).id


def test_jobs_run_by_priority_then_in_order(store):
    first, second, urgent = _submit(store), _submit(store), _submit(store, priority=3)
    assert [store.claim_next().id for _ in range(3)] == [urgent, first, second]
    assert store.claim_next() is None


def test_inputs_are_in_the_job_folder_and_a_claimed_job_is_running(store):
    job_id = _submit(store, size=5)
    assert (store.job_dir(job_id) / "inputs" / "reference.png").read_bytes() == b"xxxxx"
    claimed = store.claim_next()
    assert claimed.state is JobState.RUNNING and claimed.started_at is not None


def test_progress_is_recorded_only_while_running(store):
    job_id = _submit(store)
    store.record_progress(job_id, ProgressEvent("distill", 0.5))
    assert store.get(job_id).progress == 0.0
    store.claim_next()
    store.record_progress(job_id, ProgressEvent("distill", 0.5, prior_evaluations=7))
    assert (store.get(job_id).progress, store.get(job_id).prior_evaluations) == (0.5, 7)


def test_a_reopened_store_interrupts_what_was_running_and_keeps_the_queue(tmp_path):
    store = JobStore(tmp_path / "db", tmp_path / "jobs")
    running, queued = _submit(store), _submit(store)
    store.claim_next()
    store.close()
    reopened = JobStore(tmp_path / "db", tmp_path / "jobs")
    assert reopened.recover() == [running]
    status = reopened.get(running)
    assert status.state is JobState.INTERRUPTED and "re-queue" in status.error and status.finished_at
    assert reopened.get(queued).state is JobState.QUEUED
    assert reopened.requeue(running).state is JobState.QUEUED
    assert reopened.claim_next().id == queued  # requeued jobs go to the back
    reopened.close()


def test_requeue_and_delete_refuse_the_wrong_states(store):
    job_id = _submit(store)
    with pytest.raises(Conflict):
        store.requeue(job_id)
    store.claim_next()
    with pytest.raises(Conflict):
        store.delete(job_id)
    store.finish(job_id, JobState.SUCCEEDED)
    with pytest.raises(Conflict):
        store.requeue(job_id)
    store.delete(job_id)
    assert not store.job_dir(job_id).exists()
    with pytest.raises(NotFound):
        store.get(job_id)


def test_retention_deletes_old_then_oldest_but_never_kept_or_unfinished(store):
    now = time.time()
    old, kept_old, recent, newest = (_submit(store, keep=(i == 1), size=1000) for i in range(4))
    queued = _submit(store, size=1000)
    for job_id in (old, kept_old, recent, newest):
        store.claim_next()
        store.finish(job_id, JobState.SUCCEEDED)
    store._db.execute("UPDATE jobs SET finished_at=? WHERE id IN (?, ?)", (now - 40 * 86400, old, kept_old))
    store._db.execute("UPDATE jobs SET finished_at=? WHERE id=?", (now - 10, recent))
    orphan = store.jobs_dir / "0123abcd"
    orphan.mkdir()

    assert store.apply_retention(max_age_s=30 * 86400, max_bytes=10**9, now=now) == [old]
    assert not orphan.exists()
    assert store.apply_retention(max_age_s=30 * 86400, max_bytes=3000, now=now) == [recent]  # 4 x 1000 bytes left
    remaining = {job.id for job in store.list()}
    assert remaining == {kept_old, newest, queued}


def test_a_failed_runs_leftovers_are_artifacts_until_it_is_requeued(store):
    job_id = _submit(store)
    store.claim_next()
    failed = store.job_dir(job_id) / "outputs.failed"
    failed.mkdir()
    (failed / "log.txt").write_text("job failed")
    (store.job_dir(job_id) / ".outputs.x1.part").mkdir()  # staging of a killed run
    store.finish(job_id, JobState.FAILED, "boom")
    assert store.get(job_id).artifacts == ("failed/log.txt",)
    assert store.artifact_path(job_id, "failed/log.txt").read_text() == "job failed"
    store.requeue(job_id)
    assert sorted(p.name for p in store.job_dir(job_id).iterdir()) == ["inputs"]


def test_artifact_paths_stay_inside_the_job(store, tmp_path):
    job_id = _submit(store)
    outputs = store.job_dir(job_id) / "outputs"
    outputs.mkdir()
    (outputs / "head.glb").write_bytes(b"glb")
    os.symlink(tmp_path / "jobs.sqlite3", outputs / "escape.bin")
    assert store.artifact_path(job_id, "head.glb").read_bytes() == b"glb"
    assert store.get(job_id).artifacts == ("head.glb",)
    for name in ("escape.bin", "../inputs/reference.png", "/etc/passwd", "live/../../x", ""):
        with pytest.raises(NotFound):
            store.artifact_path(job_id, name)


def test_one_store_per_data_folder(store, tmp_path):
    with pytest.raises(JokerError, match="another Joker server is using"):
        JobStore(tmp_path / "jobs.sqlite3", tmp_path / "jobs")

"""Executors: what takes queued jobs from the store, runs them, and records how they end.

`Executor` is the interface the HTTP layer sees (start, stop, notify, cancel, slots) plus
the steps every kind shares: building a Task from the store, recording its progress,
recording its end. `LocalExecutor` is the one-machine kind: a dispatcher thread in the
server feeds queued jobs, one at a time, to a worker process it restarts whenever the
worker dies.

Cancel (local): the worker's `should_cancel` turns true at once; a job that has not
stopped by itself `cancel_grace_s` later is stopped by killing the worker. Either way the
job is `cancelled` well within 2 s. A worker that dies (crash, kill, OOM killer) fails only
the job it was running.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import replace
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable

from joker_core.protocol import BlenderView, JobState, JobStatus, ProgressEvent, SequenceSpec, parse_spec

from .errors import ApiError, Conflict
from .store import JobStore
from .tasks import Ended, Progress, Task
from .worker import EngineFunctions, worker_main

log = logging.getLogger("joker.service")
Publish = Callable[[str, str, dict[str, Any]], None]  # (job_id, event kind, data)
POLL_S = 0.05
RECORD_EVERY_S = 0.1
RETRY_S = 1.0


class Executor(ABC):
    """Runs the store's queued jobs. Subclasses decide where and how many at once."""

    kind: str

    def __init__(self, store: JobStore, publish: Publish, device: str, cancel_grace_s: float = 1.0):
        self.store = store
        self.publish = publish
        self.device = device
        self.grace_s = cancel_grace_s
        self.wake = threading.Event()      # a job was queued
        self.stopping = threading.Event()
        self._cancel_lock = threading.Lock()
        self._cancel_deadlines: dict[str, float] = {}

    @property
    @abstractmethod
    def slots(self) -> int:
        """How many jobs can run at once."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def stop(self) -> None:
        """Stop running jobs (they end `interrupted`) and release the runners."""

    def notify(self) -> None:
        """A job was queued."""
        self.wake.set()

    def cancel_running(self, job_id: str) -> None:
        """Ask a running job to stop: its runner sees a deadline, `grace_s` away, after which
        it stops the job hard; either way it ends `cancelled` within 2 s."""
        with self._cancel_lock:
            self._cancel_deadlines.setdefault(job_id, time.monotonic() + self.grace_s)

    def cancel_deadline(self, job_id: str) -> float | None:
        with self._cancel_lock:
            return self._cancel_deadlines.get(job_id)

    def describe(self) -> dict[str, Any]:
        """For GET /v1/info."""
        return {"executor": self.kind, "slots": self.slots}

    def problem(self) -> str | None:
        """Why no job can run now (GET /v1/health answers 503 with it), or None."""
        return None

    def cancel(self, job_id: str) -> JobStatus:
        status = self.store.cancel_queued(job_id)
        if status is not None:
            self.publish(job_id, "status", status.to_dict())
            return status
        status = self.store.get(job_id)
        if status.state.finished:
            raise Conflict("state", f"job {job_id} already ended ({status.state.value})",
                           "only queued or running jobs can be cancelled")
        self.cancel_running(job_id)
        return status

    # -- steps every executor kind shares --------------------------------------------------

    def task(self, job_id: str) -> Task:
        """The job as its runner needs it: the stored spec parsed (once, here), uploaded
        normal maps as paths, the device chosen."""
        return task_in(self.store.job_dir(job_id), job_id, self.store.spec(job_id), self.device)

    def started(self, job: JobStatus) -> "ProgressRecorder":
        self.publish(job.id, "status", job.to_dict())
        return ProgressRecorder(self.store, self.publish, job.id)

    def run_next(self, run: Callable[[Task, "ProgressRecorder"], Ended], where: str = "",
                 on_error: Callable[[], None] = lambda: None) -> None:
        """Claim the next queued job (or wait a little for one) and run it with `run`. One
        broken job fails alone (`on_error` resets the runner), and its end is kept whatever
        happened, before the caller takes another job."""
        job = self.store.claim_next()
        if job is None:
            self.wake.wait(0.5)
            self.wake.clear()
            return
        record = self.started(job)
        try:
            ended = run(self.task(job.id), record)
        except Exception as exc:
            log.exception("job %s could not be run%s", job.id, where)
            on_error()
            ended = Ended(job.id, JobState.FAILED, f"the server could not run this job{where} "
                                                   f"({type(exc).__name__}: {exc}); Fix: check the server log, "
                                                   "then re-queue it")
        if record.failure is not None:  # whatever the job did, its state could not be kept: it failed
            ended = Ended(job.id, JobState.FAILED, str(record.failure), ended.out_of_memory)
        with self._cancel_lock:
            self._cancel_deadlines.pop(job.id, None)
        self._record_end(ended)

    def _record_end(self, ended: Ended) -> None:
        """Until the store takes it: no other job may start before this one's end is kept.
        Should the server stop first, the restart marks the job interrupted."""
        while True:
            try:
                self.ended(ended)
                return
            except ApiError as error:
                log.error("job %s ended %s, which cannot be recorded yet (%s); retrying in %g s",
                          ended.job_id, ended.state.value, error, RETRY_S)
                if self.stopping.wait(RETRY_S):
                    return

    def ended(self, ended: Ended) -> JobStatus:
        """Record how a job ended. A store that cannot be written (a full disk) raises
        ApiError; the caller retries, as nothing else can record it."""
        if ended.state is JobState.INTERRUPTED:
            status = self.store.interrupt(ended.job_id, ended.error or "the job was interrupted")
        else:
            status = self.store.finish(ended.job_id, ended.state, ended.error)
        self.publish(ended.job_id, "status", status.to_dict())
        return status


def task_in(job_dir: Path, job_id: str, stored_spec: dict[str, Any], device: str) -> Task:
    """The task of a job whose folder is `job_dir` (the store's, or a cluster worker's copy)."""
    spec = parse_spec(stored_spec)

    def uploaded(views: tuple[BlenderView, ...]) -> tuple[BlenderView, ...]:
        return tuple(replace(view, normal_map=str(job_dir / "inputs" / "normal_maps" / view.normal_map))
                     for view in views)

    device = device if spec.device == "auto" else spec.device
    if isinstance(spec, SequenceSpec):
        spec = replace(spec, job=replace(spec.job, device=device),
                       frames=tuple(replace(frame, blender_views=uploaded(frame.blender_views))
                                    for frame in spec.frames))
    else:
        spec = replace(spec, blender_views=uploaded(spec.blender_views), device=device)
    reference = next((job_dir / "inputs").glob("reference.*"))
    return Task(job_id, job_dir, reference, spec)


class ProgressRecorder:
    """Progress of one running job: every event to the event streams, at most one every
    0.1 s (and every preview, and the last) to the store, which pollers read."""

    def __init__(self, store: JobStore, publish: Publish, job_id: str):
        self._store, self._publish, self._job_id = store, publish, job_id
        self._started = time.monotonic()
        self._last_recorded = 0.0
        self.failure: ApiError | None = None  # the store refused an update: the job must stop

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if event.eta_s is None and event.progress > 0.02:  # the job gave none: extrapolate
            elapsed = now - self._started
            event = replace(event, eta_s=round(elapsed * (1.0 - event.progress) / event.progress, 1))
        if self.failure is None and (now - self._last_recorded >= RECORD_EVERY_S or event.preview
                                     or event.progress >= 1.0):
            try:
                self._store.record_progress(self._job_id, event)
            except ApiError as error:
                log.error("job %s: %s", self._job_id, error)
                self.failure = error
            self._last_recorded = now
        self._publish(self._job_id, "progress", event.to_dict())
        if event.preview:
            self._publish(self._job_id, "preview", {"name": event.preview})


class _Worker:
    def __init__(self, context, functions: EngineFunctions):
        self.tasks, task_end = context.Pipe(duplex=False)[::-1]
        self.results, result_end = context.Pipe(duplex=False)
        self.cancel = context.RawValue("b", 0)  # shared flag; unlike an Event, no semaphore to leak
        self.process = context.Process(target=worker_main, name="joker-worker", daemon=True,
                                       args=(functions, task_end, result_end, self.cancel, os.getpid()))
        self.process.start()
        task_end.close()
        result_end.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)

    def describe_death(self) -> str:
        code = self.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return (f"the worker process died while running this job ({how}); Fix: check free memory "
                "and the server log, then re-queue the job")


class LocalExecutor(Executor):
    kind = "local"

    def __init__(self, store: JobStore, publish: Publish, functions: EngineFunctions, device: str,
                 cancel_grace_s: float = 1.0):
        super().__init__(store, publish, device, cancel_grace_s)
        self._functions = functions
        self._context = multiprocessing.get_context("spawn")
        self._worker: _Worker | None = None
        self._thread = threading.Thread(target=self._dispatch, name="joker-dispatcher", daemon=True)

    @property
    def slots(self) -> int:
        return 1

    def start(self) -> None:
        self._worker = _Worker(self._context, self._functions)  # load models before the first job
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self._thread.join(10)
        self._retire_worker()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "worker_pid": self.worker_pid}

    @property
    def worker_pid(self) -> int | None:
        worker = self._worker
        return worker.process.pid if worker is not None and worker.process.is_alive() else None

    # -- the dispatcher thread -----------------------------------------------------------

    def problem(self) -> str | None:
        if self._thread.ident is not None and not self._thread.is_alive() and not self.stopping.is_set():
            return "the job dispatcher stopped; no job will run. Fix: see the server log, then restart the server"
        return None

    def _dispatch(self) -> None:
        try:
            while not self.stopping.is_set():
                try:
                    self._dispatch_next()
                except Exception:  # a store that cannot be read or written (disk full): wait, retry
                    log.exception("the dispatcher could not go on; retrying in %g s", RETRY_S)
                    self.stopping.wait(RETRY_S)
        finally:
            self._retire_worker()

    def _dispatch_next(self) -> None:
        self.run_next(self._run)
        if self._worker is None and not self.stopping.is_set():
            self._worker = _Worker(self._context, self._functions)  # warm again before the next job

    def _run(self, task: Task, record: ProgressRecorder) -> Ended:
        if self._worker is None or not self._worker.process.is_alive():
            self._worker = _Worker(self._context, self._functions)
        worker = self._worker
        worker.cancel.value = 0
        worker.tasks.send(task)
        while True:
            ready = wait([worker.results, worker.process.sentinel], timeout=POLL_S)
            message: Progress | Ended | None = None
            if worker.results in ready:
                try:
                    message = worker.results.recv()
                except (EOFError, OSError):  # the pipe closed: the worker is dead
                    ready = [worker.process.sentinel]
            if isinstance(message, Ended) and message.job_id == task.job_id:
                if message.out_of_memory:
                    self._retire_worker()
                return message
            if isinstance(message, Progress) and message.job_id == task.job_id:
                record(message.event)
            elif worker.process.sentinel in ready:  # dead, and nothing left to read
                worker.process.join(1)
                self._worker = None
                return Ended(task.job_id, JobState.FAILED, worker.describe_death())
            if record.failure is not None:  # the store is full: stop the job as a cancel would
                self.cancel_running(task.job_id)
            if self.stopping.is_set():
                worker.kill()
                self._worker = None
                return Ended(task.job_id, JobState.INTERRUPTED, "the server shut down while this job was running")
            deadline = self.cancel_deadline(task.job_id)
            if deadline is not None:
                worker.cancel.value = 1
                if time.monotonic() > deadline:  # the job ignores should_cancel: stop it hard
                    worker.kill()
                    self._worker = None
                    return Ended(task.job_id, JobState.CANCELLED)

    def _retire_worker(self) -> None:
        """Let the worker exit cleanly (releasing the device), or kill it."""
        worker, self._worker = self._worker, None
        if worker is None or not worker.process.is_alive():
            return
        try:
            worker.tasks.send(None)
            worker.process.join(2)
        except OSError:
            pass
        if worker.process.is_alive():
            worker.kill()

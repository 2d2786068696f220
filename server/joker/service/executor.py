"""The executor: a dispatcher thread in the server that feeds queued jobs, one at a time,
to a worker process it restarts whenever the worker dies.

Cancel: the worker's `should_cancel` turns true at once; a job that has not stopped by
itself `cancel_grace_s` later is stopped by killing the worker. Either way the job is
`cancelled` well within 2 s. A worker that dies (crash, kill, OOM killer) fails only the
job it was running.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
import time
from dataclasses import replace
from multiprocessing.connection import wait
from typing import Any, Callable

from joker_core.protocol import BlenderView, JobState, JobStatus, ProgressEvent, SequenceSpec, parse_spec

from .errors import Conflict
from .store import JobStore
from .worker import OUT_OF_MEMORY, worker_main

log = logging.getLogger("joker.service")
Publish = Callable[[str, str, dict[str, Any]], None]  # (job_id, event kind, data)
POLL_S = 0.05
RECORD_EVERY_S = 0.1


class _Worker:
    def __init__(self, context, job_function: str):
        self.tasks, task_end = context.Pipe(duplex=False)[::-1]
        self.results, result_end = context.Pipe(duplex=False)
        self.cancel = context.RawValue("b", 0)  # shared flag; unlike an Event, no semaphore to leak
        self.process = context.Process(target=worker_main, name="joker-worker", daemon=True,
                                       args=(job_function, task_end, result_end, self.cancel))
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


class Executor:
    def __init__(self, store: JobStore, publish: Publish, job_function: str, device: str,
                 cancel_grace_s: float = 1.0):
        self._store = store
        self._publish = publish
        self._job_function = job_function
        self._device = device
        self._grace = cancel_grace_s
        self._context = multiprocessing.get_context("spawn")
        self._worker: _Worker | None = None
        self._lock = threading.Lock()
        self._cancel_deadlines: dict[str, float] = {}
        self._last_recorded = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._dispatch, name="joker-dispatcher", daemon=True)

    # -- control (any thread) ------------------------------------------------------------

    def start(self) -> None:
        self._worker = _Worker(self._context, self._job_function)  # load models before the first job
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(10)
        self._retire_worker()

    def notify(self) -> None:
        """A job was queued."""
        self._wake.set()

    def cancel(self, job_id: str) -> JobStatus:
        status = self._store.cancel_queued(job_id)
        if status is not None:
            self._publish(job_id, "status", status.to_dict())
            return status
        status = self._store.get(job_id)
        if status.state.finished:
            raise Conflict("state", f"job {job_id} already ended ({status.state.value})",
                           "only queued or running jobs can be cancelled")
        with self._lock:
            self._cancel_deadlines.setdefault(job_id, time.monotonic() + self._grace)
        return status

    slots = 1  # jobs it runs at once

    @property
    def worker_pid(self) -> int | None:
        worker = self._worker
        return worker.process.pid if worker is not None and worker.process.is_alive() else None

    # -- the dispatcher thread -----------------------------------------------------------

    def _dispatch(self) -> None:
        while not self._stopping.is_set():
            job = self._store.claim_next()
            if job is None:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            self._publish(job.id, "status", job.to_dict())
            try:
                state, error = self._run(job)
            except Exception as exc:  # one broken job must not stop the dispatcher
                log.exception("job %s could not be run", job.id)
                state, error = JobState.FAILED, (f"the server could not run this job ({type(exc).__name__}: "
                                                 f"{exc}); Fix: check the server log, then re-queue it")
            with self._lock:
                self._cancel_deadlines.pop(job.id, None)
            if state is JobState.INTERRUPTED:
                status = self._store.interrupt(job.id, error)
            else:
                status = self._store.finish(job.id, state, error)
            self._publish(job.id, "status", status.to_dict())
            if self._worker is None and not self._stopping.is_set():
                self._worker = _Worker(self._context, self._job_function)  # warm again before the next job

    def _run(self, job: JobStatus) -> tuple[JobState, str | None]:
        if self._worker is None or not self._worker.process.is_alive():
            self._worker = _Worker(self._context, self._job_function)
        worker = self._worker
        worker.cancel.value = 0
        self._last_recorded = 0.0
        worker.tasks.send(self._task(job.id))
        started = time.monotonic()
        while True:
            ready = wait([worker.results, worker.process.sentinel], timeout=POLL_S)
            message = None
            if worker.results in ready:
                try:
                    message = worker.results.recv()
                except (EOFError, OSError):  # the pipe closed: the worker is dead
                    ready = [worker.process.sentinel]
            if message is not None and message[1] == job.id:
                if message[0] == "end":
                    if message[3] and message[3].startswith(OUT_OF_MEMORY):
                        self._retire_worker()
                    return JobState(message[2]), message[3]
                self._progress(job.id, ProgressEvent.from_dict(message[2]), time.monotonic() - started)
            elif worker.process.sentinel in ready:  # dead, and nothing left to read
                worker.process.join(1)
                self._worker = None
                return JobState.FAILED, worker.describe_death()
            if self._stopping.is_set():
                worker.kill()
                self._worker = None
                return JobState.INTERRUPTED, "the server shut down while this job was running"
            with self._lock:
                deadline = self._cancel_deadlines.get(job.id)
            if deadline is not None:
                worker.cancel.value = 1
                if time.monotonic() > deadline:  # the job ignores should_cancel: stop it hard
                    worker.kill()
                    self._worker = None
                    return JobState.CANCELLED, None

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

    def _task(self, job_id: str) -> dict[str, Any]:
        job_dir = self._store.job_dir(job_id)
        spec = parse_spec(self._store.spec(job_id))

        def uploaded(views: tuple[BlenderView, ...]) -> tuple[BlenderView, ...]:
            return tuple(replace(view, normal_map=str(job_dir / "inputs" / "normal_maps" / view.normal_map))
                         for view in views)

        device = self._device if spec.device == "auto" else spec.device
        if isinstance(spec, SequenceSpec):
            spec = replace(spec, job=replace(spec.job, device=device),
                           frames=tuple(replace(frame, blender_views=uploaded(frame.blender_views))
                                        for frame in spec.frames))
        else:
            spec = replace(spec, blender_views=uploaded(spec.blender_views), device=device)
        reference = next((job_dir / "inputs").glob("reference.*"))
        return {"job_id": job_id, "job_dir": str(job_dir), "reference": str(reference), "spec": spec.to_dict()}

    def _progress(self, job_id: str, event: ProgressEvent, elapsed_s: float) -> None:
        if event.eta_s is None and event.progress > 0.02:  # the job gave none: extrapolate
            event = replace(event, eta_s=round(elapsed_s * (1.0 - event.progress) / event.progress, 1))
        now = time.monotonic()
        if now - self._last_recorded >= RECORD_EVERY_S or event.preview or event.progress >= 1.0:
            self._store.record_progress(job_id, event)  # pollers see at most 0.1 s old progress
            self._last_recorded = now
        self._publish(job_id, "progress", event.to_dict())  # event streams see every event
        if event.preview:
            self._publish(job_id, "preview", {"name": event.preview})

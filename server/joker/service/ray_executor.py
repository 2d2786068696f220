"""The Ray executor: the server hands its queued jobs to a Ray cluster, one job per slot.

A slot is a `JobSlot` actor (joker.service.ray_tasks) that asks Ray for one GPU when the
cluster has GPUs, else for its share of the CPUs; one server thread per slot claims the
next job from the store, sends it to its actor as data, drains progress, previews and files
every POLL_S into the store's job folder, and records how the job ended. The store stays
the single source of truth; Ray only runs jobs.

Cancel: the actor's flag at once, then `ray.kill` after `cancel_grace_s` (well within 2 s).
A dead actor or node fails only its job, with a message that says so, and the slot starts
a new actor before it takes the next job. Stopping the server kills the actors, and their
jobs are `interrupted`, as with the local executor.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joker_core.errors import JokerError
from joker_core.files import atomic_write_bytes
from joker_core.protocol import JobState, JobStatus, ProgressEvent, parse_spec

from .errors import Conflict
from .executor import Publish
from .ray_tasks import RayJob, SlotUpdate
from .store import JobStore

log = logging.getLogger("joker.service")
POLL_S = 0.05
RECORD_EVERY_S = 0.1
DEAD_FIX = "Fix: check that node's Ray logs (memory, crashes), then re-queue the job"
CONNECT_FIX = "start it (ray start --head), or pass the head's address: --ray-address HOST:6379 or ray://HOST:10001"


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None      # None: start Ray on this machine; "auto" or "ray://host:port": join a cluster
    slots: int | None = None        # None: one per GPU in the cluster, else one per CPU


def connect(address: str | None, **init_options: Any) -> None:
    """Join the cluster at `address`, or start a private local one (never someone else's)."""
    import ray

    if ray.is_initialized():
        return
    _check_reachable(address)
    try:
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False, **init_options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise JokerError(f"cannot join the Ray cluster at {address} ({str(error).splitlines()[0][:160]})",
                         CONNECT_FIX) from error


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Ray waits for an unreachable head forever; a wrong address should be an error at once."""
    host, _, port = (address or "").removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():  # None, "auto", "local": Ray finds or starts the head itself
        return
    try:
        socket.create_connection((host, int(port)), timeout_s).close()
    except OSError as error:
        raise JokerError(f"cannot reach the Ray cluster at {address} ({error.strerror or error})",
                         CONNECT_FIX) from None


def plan_slots(resources: dict[str, float], wanted: int | None, device: str) -> tuple[int, dict[str, float]]:
    """(slots, resources one slot's actor asks for). CUDA jobs take a whole GPU each; CPU
    jobs share the cluster's CPUs."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    use_gpus = gpus > 0 and device in ("auto", "cuda") or device.startswith("cuda")
    if use_gpus:
        if gpus == 0:
            raise JokerError(f"the server's device is {device} but the Ray cluster has no GPU",
                             "add GPU nodes to the cluster, or start the server with --device cpu")
        slots = min(wanted or gpus, gpus)
        return slots, {"num_gpus": 1, "num_cpus": 1}
    slots = min(wanted or cpus, cpus) if cpus else 0
    if slots == 0:
        raise JokerError("the Ray cluster has no CPU to run jobs on", "start Ray workers with CPUs (ray start)")
    return slots, {"num_cpus": max(1, cpus // slots)}


class RayExecutor:
    """The same control surface as the local Executor (start, stop, notify, cancel)."""

    def __init__(self, store: JobStore, publish: Publish, job_function: str, device: str,
                 cancel_grace_s: float = 1.0, settings: RaySettings = RaySettings()):
        self._store = store
        self._publish = publish
        self._job_function = job_function
        self._device = device
        self._grace = cancel_grace_s
        self._settings = settings
        self._lock = threading.Lock()
        self._cancel_deadlines: dict[str, float] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._slots: list[_Slot] = []

    # -- control (any thread) ------------------------------------------------------------

    def start(self) -> None:
        import ray

        connect(self._settings.address)
        count, resources = plan_slots(ray.cluster_resources(), self._settings.slots, self._device)
        self._slots = [_Slot(self, index, resources) for index in range(count)]
        for slot in self._slots:
            slot.start()
        log.info("Ray executor: %d slots, each %s", count, resources)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        for slot in self._slots:
            slot.thread.join(10)
        for slot in self._slots:
            slot.retire()

    def notify(self) -> None:
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

    @property
    def slots(self) -> int:
        return len(self._slots)

    @property
    def worker_pid(self) -> int | None:
        return None  # many workers, on other machines: see slot_processes()

    def slot_processes(self) -> list[dict[str, Any] | None]:
        """Per slot: the pid and node of its actor (None while it starts)."""
        return [slot.where for slot in self._slots]

    def _cancel_deadline(self, job_id: str) -> float | None:
        with self._lock:
            return self._cancel_deadlines.get(job_id)

    def _forget_cancel(self, job_id: str) -> None:
        with self._lock:
            self._cancel_deadlines.pop(job_id, None)


class _Slot:
    """One actor and the server thread that feeds it."""

    def __init__(self, executor: RayExecutor, index: int, resources: dict[str, float]):
        self.executor = executor
        self.index = index
        self.resources = resources
        self.actor: Any = None
        self.where: dict[str, Any] | None = None
        self.thread = threading.Thread(target=self._loop, name=f"joker-ray-slot-{index}", daemon=True)
        self._last_recorded = 0.0

    def start(self) -> None:
        self.thread.start()

    def _loop(self) -> None:
        executor = self.executor
        store = executor._store
        while not executor._stopping.is_set():
            if self.actor is None and not self._spawn():
                continue
            job = store.claim_next()
            if job is None:
                executor._wake.wait(0.5)
                executor._wake.clear()
                continue
            executor._publish(job.id, "status", job.to_dict())
            try:
                state, error = self._run(job)
            except Exception as exc:  # one broken job must not stop the slot
                log.exception("job %s could not be run on Ray", job.id)
                self.retire()
                state, error = JobState.FAILED, (f"the server could not run this job on Ray ({type(exc).__name__}: "
                                                 f"{exc}); Fix: check the server log, then re-queue it")
            executor._forget_cancel(job.id)
            if state is JobState.INTERRUPTED:
                status = store.interrupt(job.id, error)
            else:
                status = store.finish(job.id, state, error)
            executor._publish(job.id, "status", status.to_dict())

    def _spawn(self) -> bool:
        """A new actor, warm (job function imported) before it takes a job."""
        import ray

        from .ray_tasks import JobSlot

        actor = ray.remote(JobSlot).options(max_concurrency=4, **self.resources).remote(self.executor._job_function)
        pending = actor.where.remote()
        while not self.executor._stopping.is_set():
            ready, _ = ray.wait([pending], timeout=0.5)
            if ready:
                try:
                    self.where = ray.get(pending)
                except ray.exceptions.RayError as error:
                    log.error("Ray slot %d could not start: %s", self.index, error)
                    time.sleep(1.0)
                    return False
                self.actor = actor
                return True
        ray.kill(actor)
        return False

    def retire(self) -> None:
        import ray

        actor, self.actor, self.where = self.actor, None, None
        if actor is not None:
            try:
                ray.kill(actor)
            except Exception:  # already dead, or Ray already shut down
                pass

    def _run(self, job: JobStatus) -> tuple[JobState, str | None]:
        import ray

        executor = self.executor
        self._last_recorded = 0.0
        started = time.monotonic()
        pending = self.actor.run.remote(self._job(job.id))
        cancelling = False
        while True:
            ready, _ = ray.wait([pending], timeout=POLL_S)
            try:
                if ready:
                    result = ray.get(pending)
                    self._apply(job.id, result.update, started)
                    return JobState(result.state), result.error
                self._apply(job.id, ray.get(self.actor.drain.remote()), started)
            except ray.exceptions.RayActorError as error:
                return self._dead(error)
            if executor._stopping.is_set():
                self.retire()
                return JobState.INTERRUPTED, "the server shut down while this job was running"
            deadline = executor._cancel_deadline(job.id)
            if deadline is not None:
                if not cancelling:
                    self.actor.cancel.remote()
                    cancelling = True
                if time.monotonic() > deadline:  # the job ignores should_cancel: stop it hard
                    self.retire()
                    return JobState.CANCELLED, None

    def _dead(self, error: Exception) -> tuple[JobState, str | None]:
        where = self.where or {}
        self.actor, self.where = None, None  # the next job gets a new actor
        cause = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        return JobState.FAILED, (f"the Ray worker running this job died (process {where.get('pid')} on node "
                                 f"{str(where.get('node'))[:12]}: {cause}); {DEAD_FIX}")

    def _job(self, job_id: str) -> RayJob:
        store = self.executor._store
        inputs_dir = store.job_dir(job_id) / "inputs"
        inputs = {path.relative_to(inputs_dir).as_posix(): path.read_bytes()
                  for path in sorted(inputs_dir.rglob("*")) if path.is_file()}
        spec = parse_spec(store.spec(job_id))
        device = self.executor._device
        if device != "auto" and spec.device == "auto":
            spec = _with_device(spec, device)
        return RayJob(job_id, spec.to_dict(), inputs)

    def _apply(self, job_id: str, update: SlotUpdate, started: float) -> None:
        job_dir = self.executor._store.job_dir(job_id)
        for name, data in update.files.items():  # files first: an event may name a preview
            atomic_write_bytes(_inside(job_dir, name), data)
        for data in update.events:
            self._progress(job_id, ProgressEvent.from_dict(data), time.monotonic() - started)

    def _progress(self, job_id: str, event: ProgressEvent, elapsed_s: float) -> None:
        from dataclasses import replace

        store, publish = self.executor._store, self.executor._publish
        if event.eta_s is None and event.progress > 0.02:  # the job gave none: extrapolate
            event = replace(event, eta_s=round(elapsed_s * (1.0 - event.progress) / event.progress, 1))
        now = time.monotonic()
        if now - self._last_recorded >= RECORD_EVERY_S or event.preview or event.progress >= 1.0:
            store.record_progress(job_id, event)
            self._last_recorded = now
        publish(job_id, "progress", event.to_dict())
        if event.preview:
            publish(job_id, "preview", {"name": event.preview})


def _with_device(spec, device: str):
    from dataclasses import replace

    from joker_core.protocol import SequenceSpec

    if isinstance(spec, SequenceSpec):
        return replace(spec, job=replace(spec.job, device=device))
    return replace(spec, device=device)


def _inside(job_dir: Path, name: str) -> Path:
    """Where a returned file goes; a name from the cluster never leaves the job folder."""
    path = (job_dir / name).resolve()
    if not path.is_relative_to(job_dir.resolve()) or name.split("/", 1)[0] == "inputs":
        raise ValueError(f"the Ray worker returned a file outside the job's folders: {name!r}")
    os.makedirs(path.parent, exist_ok=True)
    return path

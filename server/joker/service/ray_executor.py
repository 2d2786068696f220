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
from joker_core.protocol import JobState

from .executor import Executor, ProgressRecorder, Publish
from .ray_tasks import RayJob, SlotUpdate
from .store import JobStore
from .tasks import Ended, Task
from .worker import EngineFunctions

log = logging.getLogger("joker.service")
POLL_S = 0.05
WAIT_WARNING_S = 30.0
DEAD_FIX = "Fix: check that node's Ray logs (memory, crashes), then re-queue the job"
CONNECT_FIX = "start it (ray start --head), or pass the head's address: --ray-address HOST:6379 or ray://HOST:10001"


@dataclass(frozen=True)
class RaySettings:
    address: str | None = None      # None: start Ray on this machine; "auto" or "ray://host:port": join a cluster
    slots: int | None = None        # None: one per GPU in the cluster, else one per CPU


def connect(address: str | None) -> None:
    """Join the cluster at `address`, or start a private local one (never someone else's)."""
    import ray

    if ray.is_initialized():
        return
    _check_reachable(address)
    try:
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False)
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


def plan_slots(resources: dict[str, float], wanted: int | None, device: str,
               node_cpus: int | None = None) -> tuple[int, dict[str, float]]:
    """(slots, resources one slot's actor asks for). CUDA jobs take a whole GPU each; CPU
    jobs share the cluster's CPUs, at most one node's worth each (`node_cpus`, the largest)."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if device.startswith("cuda") or (gpus > 0 and device == "auto"):
        if gpus == 0:
            raise JokerError(f"the server's device is {device} but the Ray cluster has no GPU",
                             "add GPU nodes to the cluster, or start the server with --device cpu")
        slots = min(wanted or gpus, gpus)
        return slots, {"num_gpus": 1, "num_cpus": 1}
    slots = min(wanted or cpus, cpus) if cpus else 0
    if slots == 0:
        raise JokerError("the Ray cluster has no CPU to run jobs on", "start Ray workers with CPUs (ray start)")
    return slots, {"num_cpus": max(1, min(cpus // slots, node_cpus or cpus))}


def cluster_plan(wanted: int | None, device: str) -> tuple[int, dict[str, float]]:
    """plan_slots for the cluster this process is connected to."""
    import ray

    node_cpus = max((int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node["Alive"]), default=0)
    return plan_slots(ray.cluster_resources(), wanted, device, node_cpus)


class RayExecutor(Executor):
    kind = "ray"

    def __init__(self, store: JobStore, publish: Publish, functions: EngineFunctions, device: str,
                 cancel_grace_s: float = 1.0, settings: RaySettings = RaySettings()):
        # Ray shows each actor its own GPU as cuda:0, whichever it is on the node
        super().__init__(store, publish, "cuda" if device.startswith("cuda") else device, cancel_grace_s)
        self.functions = functions
        self.settings = settings
        self._slots: list[_Slot] = []

    @property
    def slots(self) -> int:
        return len(self._slots)

    def start(self) -> None:
        connect(self.settings.address)
        count, resources = cluster_plan(self.settings.slots, self.device)
        self._slots = [_Slot(self, index, resources) for index in range(count)]
        for slot in self._slots:
            slot.thread.start()
        log.info("Ray executor: %d slots, each asking for %s", count, resources)

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        for slot in self._slots:
            slot.thread.join(10)
        for slot in self._slots:
            slot.retire()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ray_address": self.settings.address or "local",
                "slot_processes": [slot.where for slot in self._slots]}



class _Slot:
    """One actor, and the server thread that feeds it jobs from the store."""

    def __init__(self, executor: RayExecutor, index: int, resources: dict[str, float]):
        self.executor = executor
        self.index = index
        self.resources = resources
        self.actor: Any = None
        self.where: dict[str, Any] | None = None  # the actor's pid and node, once it runs
        self.thread = threading.Thread(target=self._loop, name=f"joker-ray-slot-{index}", daemon=True)

    def _loop(self) -> None:
        executor = self.executor
        while not executor.stopping.is_set():
            if self.actor is None and not self._spawn():
                continue
            executor.run_next(self._run, " on Ray", on_error=self.retire)

    def _spawn(self) -> bool:
        """A new actor, warm (engine loaded) before it takes a job."""
        import ray

        from .ray_tasks import JobSlot

        actor = ray.remote(JobSlot).options(max_concurrency=4, **self.resources).remote(self.executor.functions)
        pending = actor.where.remote()
        asked = time.monotonic()
        while not self.executor.stopping.is_set():
            ready, _ = ray.wait([pending], timeout=0.5)
            if not ready and asked and time.monotonic() - asked > WAIT_WARNING_S:
                log.warning("Ray slot %d still waits for a node with %s free (see `ray status`)",
                            self.index, self.resources)
                asked = 0.0
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

    def _run(self, task: Task, record: ProgressRecorder) -> Ended:
        import ray

        executor = self.executor
        pending = self.actor.run.remote(self._as_data(task))
        cancelling = False
        while True:
            ready, _ = ray.wait([pending], timeout=POLL_S)
            try:
                if ready:
                    result = ray.get(pending)
                    self._apply(task, result.update, record)
                    if result.ended.out_of_memory:
                        self.retire()  # a new actor starts with all device memory released
                    return result.ended
                self._apply(task, ray.get(self.actor.drain.remote()), record)
            except ray.exceptions.RayActorError as error:
                return self._dead(task.job_id, error)
            if executor.stopping.is_set():
                self.retire()
                return Ended(task.job_id, JobState.INTERRUPTED, "the server shut down while this job was running")
            deadline = executor.cancel_deadline(task.job_id)
            if deadline is not None:
                if not cancelling:
                    self.actor.cancel.remote()
                    cancelling = True
                if time.monotonic() > deadline:  # the job ignores should_cancel: stop it hard
                    self.retire()
                    return Ended(task.job_id, JobState.CANCELLED)

    def _dead(self, job_id: str, error: Exception) -> Ended:
        where = self.where or {}
        self.actor, self.where = None, None  # the next job gets a new actor
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        return Ended(job_id, JobState.FAILED, f"the Ray worker running this job died (process {where.get('pid')} "
                                              f"on node {str(where.get('node'))[:12]}: {cause}); {DEAD_FIX}")

    def _as_data(self, task: Task) -> RayJob:
        """The job as the actor gets it: no paths, the bytes of its inputs."""
        inputs_dir = task.job_dir / "inputs"
        inputs = {path.relative_to(inputs_dir).as_posix(): path.read_bytes()
                  for path in sorted(inputs_dir.rglob("*")) if path.is_file()}
        return RayJob(task.job_id, self.executor.store.spec(task.job_id), self.executor.device, inputs)

    @staticmethod
    def _apply(task: Task, update: SlotUpdate, record: ProgressRecorder) -> None:
        for name, data in update.files.items():  # files first: an event may name a preview
            atomic_write_bytes(_inside(task.job_dir, name), data)
        for event in update.events:
            record(event)


def _inside(job_dir: Path, name: str) -> Path:
    """Where a returned file goes; a name from the cluster never leaves the job folder."""
    path = (job_dir / name).resolve()
    if not path.is_relative_to(job_dir.resolve()) or name.split("/", 1)[0] == "inputs":
        raise ValueError(f"the Ray worker returned a file outside the job's folders: {name!r}")
    os.makedirs(path.parent, exist_ok=True)
    return path

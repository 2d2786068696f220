"""What runs on the Ray cluster: one `JobSlot` actor per slot of the Ray executor.

A slot keeps the job function imported (and whatever model it caches loaded) between
jobs, exactly as the local worker process does. Nothing assumes a shared filesystem: a
job arrives as data (its spec and the bytes of its inputs), runs in a scratch folder on
the worker's own disk, and its files go back as bytes through the object store, together
with the progress events, each time the server drains the slot. The actor is threaded, so
`drain` and `cancel` answer while `run` works.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joker_core.errors import JokerError
from joker_core.protocol import JobState, ProgressEvent

from ..generation.output import record_engine_info
from .executor import task_in
from .tasks import Ended, Engine, run_task
from .worker import EngineFunctions

# The job folder's sub-folders that come back to the server (inputs it already has).
RETURNED_FOLDERS = ("outputs", "outputs.failed", "live", "logs")


@dataclass(frozen=True)
class RayJob:
    """A job as data: its stored spec, the device, and the bytes of its inputs/ folder by name."""
    job_id: str
    spec: dict[str, Any]
    device: str
    inputs: dict[str, bytes]


@dataclass(frozen=True)
class SlotUpdate:
    """What happened since the last drain: progress events, in order, and the files (by
    name under the job folder) that are new or changed since then."""
    events: list[ProgressEvent] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class SlotResult:
    ended: Ended
    update: SlotUpdate                   # the last events and files


class FolderMirror:
    """The files of a job folder the server has not seen yet. Names with a dot-part are
    work in progress (atomic staging folders) and wait until they are renamed into place."""

    def __init__(self, root: Path):
        self.root = root
        self._sent: dict[str, tuple[int, int]] = {}

    def changes(self) -> dict[str, bytes]:
        changed = {}
        for folder in RETURNED_FOLDERS:
            base = self.root / folder
            if not base.is_dir():
                continue
            for path in sorted(base.rglob("*")):
                name = path.relative_to(self.root).as_posix()
                if any(part.startswith(".") for part in Path(name).parts) or not path.is_file() or path.is_symlink():
                    continue
                try:
                    stat = path.stat()
                    signature = (stat.st_mtime_ns, stat.st_size)
                    if self._sent.get(name) != signature:
                        changed[name] = path.read_bytes()
                        self._sent[name] = signature
                except FileNotFoundError:  # renamed away between listing and reading: next drain
                    continue
        return changed


class JobSlot:
    """The actor body (made a Ray actor by the executor, which chooses its resources)."""

    def __init__(self, functions: EngineFunctions):
        record_engine_info()
        try:
            self._engine: Engine | JokerError = functions.load()
        except JokerError as error:
            self._engine = error  # every job fails with this message; the slot stays up
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._events: deque[ProgressEvent] = deque()
        self._mirror: FolderMirror | None = None

    def where(self) -> dict[str, Any]:
        """The process and node this slot runs in (for logs, /v1/info and tests)."""
        import ray

        return {"pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}

    def cancel(self) -> None:
        self._cancel.set()

    def drain(self) -> SlotUpdate:
        with self._lock:
            events = [self._events.popleft() for _ in range(len(self._events))]
            # after the events: a preview an event names was written before the event was queued
            files = self._mirror.changes() if self._mirror is not None else {}
        return SlotUpdate(events, files)

    def run(self, job: RayJob) -> SlotResult:
        self._cancel.clear()
        scratch = Path(tempfile.mkdtemp(prefix=f"joker-ray-{job.job_id[:12]}-"))
        try:
            _write_inputs(scratch / "inputs", job.inputs)
            task = task_in(scratch, job.job_id, job.spec, job.device)
            with self._lock:
                self._events.clear()
                self._mirror = FolderMirror(scratch)
            if isinstance(self._engine, JokerError):
                ended = Ended(job.job_id, JobState.FAILED, str(self._engine))
            else:
                ended = run_task(self._engine, task, lambda progress: self._events.append(progress.event),
                                 self._cancel.is_set)
            return SlotResult(ended, self.drain())
        finally:
            with self._lock:
                self._mirror = None
            shutil.rmtree(scratch, ignore_errors=True)


def _write_inputs(folder: Path, inputs: dict[str, bytes]) -> None:
    for name, data in inputs.items():
        path = (folder / name).resolve()
        if not path.is_relative_to(folder.resolve()):  # names come from the store; still, stay inside
            raise ValueError(f"input name {name!r} leaves the job folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

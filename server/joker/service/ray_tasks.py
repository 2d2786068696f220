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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from joker_core.protocol import BlenderView, JobState, SequenceSpec, parse_spec

from ..generation.output import record_engine_info
from .worker import load_job_function, run_job, sequence_function

# The job folder's sub-folders that come back to the server (inputs it already has).
RETURNED_FOLDERS = ("outputs", "outputs.failed", "live", "logs")


@dataclass(frozen=True)
class RayJob:
    """A job as data: `inputs` maps names under the job's inputs/ folder to their bytes."""
    job_id: str
    spec: dict[str, Any]
    inputs: dict[str, bytes]


@dataclass(frozen=True)
class SlotUpdate:
    """What happened since the last drain: events (ProgressEvent dicts, in order) and the
    files, by name under the job folder, that are new or changed since then."""
    events: list[dict[str, Any]] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class SlotResult:
    state: str                           # a finished JobState value
    error: str | None
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

    def __init__(self, job_function: str):
        record_engine_info()
        try:
            self._generate: Any = load_job_function(job_function)
        except Exception as error:  # JokerError: every job fails with it, the slot stays up
            self._generate = error
        self._sequence_function = sequence_function(job_function)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._events: deque[dict[str, Any]] = deque()
        self._mirror: FolderMirror | None = None

    def where(self) -> dict[str, Any]:
        """The process and node this slot runs in (for logs, health and tests)."""
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
            task = _unpack(job, scratch)
            with self._lock:
                self._events.clear()
                self._mirror = FolderMirror(scratch)
            if isinstance(self._generate, Exception):
                state, error = JobState.FAILED, str(self._generate)
            else:
                task["sequence_function"] = self._sequence_function
                state, error = run_job(self._generate, task, self._events.append, self._cancel.is_set)
            update = self.drain()
            return SlotResult(state.value, error, update)
        finally:
            with self._lock:
                self._mirror = None
            shutil.rmtree(scratch, ignore_errors=True)


def _unpack(job: RayJob, job_dir: Path) -> dict[str, Any]:
    """Write the inputs into this worker's scratch job folder; the task run_job takes."""
    inputs = job_dir / "inputs"
    for name, data in job.inputs.items():
        path = (inputs / name).resolve()
        if not path.is_relative_to(inputs.resolve()):  # names came from the store, but stay inside
            raise ValueError(f"input name {name!r} leaves the job folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    spec = parse_spec(job.spec)

    def uploaded(views: tuple[BlenderView, ...]) -> tuple[BlenderView, ...]:
        return tuple(replace(view, normal_map=str(inputs / "normal_maps" / view.normal_map)) for view in views)

    if isinstance(spec, SequenceSpec):
        spec = replace(spec, frames=tuple(replace(frame, blender_views=uploaded(frame.blender_views))
                                          for frame in spec.frames))
    else:
        spec = replace(spec, blender_views=uploaded(spec.blender_views))
    reference = next(inputs.glob("reference.*"))
    return {"job_id": job.job_id, "job_dir": str(job_dir), "reference": str(reference), "spec": spec.to_dict()}

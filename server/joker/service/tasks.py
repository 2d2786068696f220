"""What crosses between an executor and whatever runs the engine (a local worker process
today, a cluster actor tomorrow): a Task in, Progress events and one Ended out.

`run_task` is the unit of work every executor kind shares: it runs one task with an
`Engine`, streams its progress, honours cancel, and turns every way a job can end into an
`Ended`. It assumes nothing about processes: it only needs the job folder on disk.
"""

from __future__ import annotations

import importlib
import re
import sys
import traceback
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from joker_core.errors import JobCancelled, JokerError
from joker_core.files import atomic_write_bytes
from joker_core.protocol import JobSpec, JobState, ProgressEvent, SequenceSpec

ENGINE_JOB_FUNCTION = "joker.api:generate"
ENGINE_SEQUENCE_FUNCTION = "joker.sequence:generate_sequence"
JobFunction = Callable[..., Any]  # (reference, *, spec, out_dir, progress, should_cancel)


@dataclass(frozen=True)
class Task:
    """One job, ready to run: its spec parsed once, its files on disk."""
    job_id: str
    job_dir: Path
    reference: Path
    spec: JobSpec | SequenceSpec

    @property
    def out_dir(self) -> Path:
        return self.job_dir / "outputs"


@dataclass(frozen=True)
class Progress:
    job_id: str
    event: ProgressEvent


@dataclass(frozen=True)
class Ended:
    job_id: str
    state: JobState
    error: str | None = None
    out_of_memory: bool = False  # the runner that hit it must be replaced to release the memory


class OutOfMemory(JokerError):
    """The device (or the host) ran out of memory. Engines may raise it; `run_task` also
    recognises torch's and Python's own out-of-memory errors and reports them as this."""

    def __init__(self, detail: str = ""):
        super().__init__(f"the device ran out of memory ({detail[:200]})" if detail else "the device ran out of memory",
                         "use a lower quality or fewer views, or close other programs using the GPU")


@dataclass(frozen=True)
class Engine:
    """The functions that run jobs, resolved once where the engine lives."""
    job: JobFunction
    sequence: JobFunction

    @classmethod
    def load(cls, job_function: str = ENGINE_JOB_FUNCTION, sequence_function: str | None = None) -> "Engine":
        """`sequence_function` defaults to the job function's module's `generate_sequence`
        when it has one (test-sized engines), else the engine's."""
        job = load_function(job_function)
        if sequence_function is None:
            own = getattr(sys.modules.get(job.__module__), "generate_sequence", None)
            sequence = own if callable(own) else load_function(ENGINE_SEQUENCE_FUNCTION)
        else:
            sequence = load_function(sequence_function)
        return cls(job, sequence)

    def function_for(self, spec: JobSpec | SequenceSpec) -> JobFunction:
        return self.sequence if isinstance(spec, SequenceSpec) else self.job


def load_function(import_path: str) -> JobFunction:
    module_name, _, function_name = import_path.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise JokerError(f"cannot load the job function {import_path!r} ({type(error).__name__}: {error})",
                         "install the engine, or start the server with --job-function module:function") from error
    if not callable(function):
        raise JokerError(f"{import_path!r} is not a function", "pass --job-function module:function")
    return function


def run_task(engine: Engine, task: Task, emit: Callable[[Progress], None],
             should_cancel: Callable[[], bool]) -> Ended:
    def progress(event: ProgressEvent) -> None:
        if event.preview:
            event = replace(event, preview=_publish_preview(Path(event.preview), task.job_dir))
        emit(Progress(task.job_id, event))

    try:
        engine.function_for(task.spec)(task.reference, spec=task.spec, out_dir=task.out_dir,
                                       progress=progress, should_cancel=should_cancel)
    except JobCancelled:
        return Ended(task.job_id, JobState.CANCELLED)
    except Exception as error:
        out_of_memory = as_out_of_memory(error)
        if out_of_memory is not None:
            return Ended(task.job_id, JobState.FAILED, str(out_of_memory), out_of_memory=True)
        if isinstance(error, JokerError):
            return Ended(task.job_id, JobState.FAILED, str(error))
        atomic_write_bytes(task.job_dir / "logs" / "traceback.txt", traceback.format_exc().encode())
        return Ended(task.job_id, JobState.FAILED,
                     f"the engine failed: {type(error).__name__}: {error}; Fix: this is a bug, "
                     "please report it with the job's logs/traceback.txt")
    return Ended(task.job_id, JobState.SUCCEEDED)


# torch raises plain RuntimeErrors for host (CPU) and MPS allocation failures.
_ALLOCATOR_MESSAGES = re.compile(r"out of memory|can't allocate memory|failed to allocate", re.IGNORECASE)


def as_out_of_memory(error: BaseException) -> OutOfMemory | None:
    if isinstance(error, OutOfMemory):
        return error
    torch = sys.modules.get("torch")  # only a job that imported torch can have hit its allocator
    torch_oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    message = (str(error).splitlines() or [type(error).__name__])[0]
    if isinstance(error, MemoryError) or (torch_oom is not None and isinstance(error, torch_oom)):
        return OutOfMemory(message)
    if type(error) is RuntimeError and _ALLOCATOR_MESSAGES.search(str(error)):
        return OutOfMemory(message)
    return None


def _publish_preview(path: Path, job_dir: Path) -> str | None:
    """Copy a preview the job wrote into the job's live/ folder; its artifact name."""
    source = path if path.is_absolute() else job_dir / "outputs" / path
    if not source.is_file():
        return None
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", source.name).lstrip(".") or "preview"
    atomic_write_bytes(job_dir / "live" / name, source.read_bytes())
    return f"live/{name}"

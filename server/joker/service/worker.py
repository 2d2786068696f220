"""The worker process: owns the device, imports the job function once (so the models it
caches stay loaded between jobs) and runs one job at a time for the executor.

Messages to the executor: ("progress", job_id, ProgressEvent dict) while a job runs, then
("end", job_id, state, error). After an out-of-memory failure the executor replaces the
worker, so the next job starts with all device memory released.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import re
import threading
import time
import traceback
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

from joker_core.errors import JobCancelled, JokerError
from joker_core.files import atomic_write_bytes
from joker_core.protocol import JobState, ProgressEvent, SequenceSpec, parse_spec

from ..generation.output import record_engine_info

OUT_OF_MEMORY = "the device ran out of memory"
SEQUENCE_FUNCTION = "joker.sequence:generate_sequence"


def load_job_function(import_path: str) -> Callable[..., Any]:
    module_name, _, function_name = import_path.partition(":")
    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise JokerError(f"cannot load the job function {import_path!r} ({type(error).__name__}: {error})",
                         "install the engine, or start the server with --job-function module:function") from error


def sequence_function(job_function: str) -> str:
    """Who runs jobs whose spec has frames: the job function's module's `generate_sequence`
    when it has one (test-sized engines), else the engine's."""
    module_name = job_function.partition(":")[0]
    try:
        has_own = hasattr(importlib.import_module(module_name), "generate_sequence")
    except ImportError:
        has_own = False
    return f"{module_name}:generate_sequence" if has_own else SEQUENCE_FUNCTION


def worker_main(job_function: str, tasks: Connection, results: Connection, cancel: ctypes.c_byte) -> None:
    _exit_with_parent()
    record_engine_info()
    if hasattr(os, "nice"):
        os.nice(5)  # a CPU job must not starve the server's answers (status polls, cancel)
    try:
        generate: Callable[..., Any] | JokerError = load_job_function(job_function)
    except JokerError as error:
        generate = error  # every job fails with this message instead of a silent dead worker
    while True:
        try:
            task = tasks.recv()
        except EOFError:  # the server is gone
            return
        if task is None:
            return
        job_id = task["job_id"]
        if isinstance(generate, JokerError):
            state, error = JobState.FAILED, str(generate)
        else:
            task["sequence_function"] = sequence_function(job_function)
            state, error = run_job(generate, task, lambda event: results.send(("progress", job_id, event)),
                                   lambda: bool(cancel.value))
        results.send(("end", job_id, state.value, error))


def run_job(generate: Callable[..., Any], task: dict[str, Any], send: Callable[[dict], None],
            should_cancel: Callable[[], bool]) -> tuple[JobState, str | None]:
    job_dir = Path(task["job_dir"])

    def progress(event: ProgressEvent) -> None:
        if event.preview:
            event = replace(event, preview=_publish_preview(Path(event.preview), job_dir))
        send(event.to_dict())

    try:
        spec = parse_spec(task["spec"])
        if isinstance(spec, SequenceSpec):
            generate = load_job_function(task.get("sequence_function", SEQUENCE_FUNCTION))
        generate(Path(task["reference"]), spec=spec, out_dir=job_dir / "outputs",
                 progress=progress, should_cancel=should_cancel)
    except JobCancelled:
        return JobState.CANCELLED, None
    except JokerError as error:
        return JobState.FAILED, str(error)
    except Exception as error:  # a bug or the device: the job fails, the worker reports it
        if type(error).__name__ == "OutOfMemoryError" or "out of memory" in str(error).lower():
            return JobState.FAILED, (f"{OUT_OF_MEMORY} ({(str(error) or type(error).__name__).splitlines()[0][:200]}); Fix: use a lower "
                                     "quality or fewer views, or close other programs using the GPU")
        atomic_write_bytes(job_dir / "logs" / "traceback.txt", traceback.format_exc().encode())
        return JobState.FAILED, (f"the engine failed: {type(error).__name__}: {error}; Fix: this is a bug, "
                                 "please report it with the job's logs/traceback.txt")
    return JobState.SUCCEEDED, None


def _publish_preview(path: Path, job_dir: Path) -> str | None:
    """Copy a preview the job wrote into the job's live/ folder; its artifact name."""
    source = path if path.is_absolute() else job_dir / "outputs" / path
    if not source.is_file():
        return None
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", source.name).lstrip(".") or "preview"
    atomic_write_bytes(job_dir / "live" / name, source.read_bytes())
    return f"live/{name}"


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """A server killed with -9 cannot stop its worker; the worker stops itself, so no job
    of a dead server goes on writing into the store."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="joker-parent-watch", daemon=True).start()

"""The worker process of the local executor: owns the device, resolves the engine's
functions once (so the models they cache stay loaded between jobs) and runs one Task at a
time, sending Progress events and then one Ended back up its pipe.

After an out-of-memory failure the executor replaces the worker, so the next job starts
with all device memory released.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection

from joker_core.errors import JokerError
from joker_core.protocol import JobState

from ..generation.output import record_engine_info
from .tasks import Engine, Ended, Task, run_task


@dataclass(frozen=True)
class EngineFunctions:
    """Import paths, sent to the worker at start; resolved there, once."""
    job: str
    sequence: str | None = None

    def load(self) -> Engine:
        return Engine.load(self.job, self.sequence)


def worker_main(functions: EngineFunctions, tasks: Connection, results: Connection, cancel: ctypes.c_byte) -> None:
    _exit_with_parent()
    record_engine_info()
    if hasattr(os, "nice"):
        os.nice(5)  # a CPU job must not starve the server's answers (status polls, cancel)
    try:
        engine: Engine | JokerError = functions.load()
    except JokerError as error:
        engine = error  # every job fails with this message instead of a silent dead worker
    while True:
        try:
            task: Task | None = tasks.recv()
        except EOFError:  # the server is gone
            return
        if task is None:
            return
        if isinstance(engine, JokerError):
            ended = Ended(task.job_id, JobState.FAILED, str(engine))
        else:
            ended = run_task(engine, task, results.send, lambda: bool(cancel.value))
        results.send(ended)


def _exit_with_parent(poll_s: float = 0.5) -> None:
    """A server killed with -9 cannot stop its worker; the worker stops itself, so no job
    of a dead server goes on writing into the store."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="joker-parent-watch", daemon=True).start()

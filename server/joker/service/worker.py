"""The worker process of the local executor: owns the device, resolves the engine's
functions once (so the models they cache stay loaded between jobs) and runs one Task at a
time, sending Progress events and then one Ended back up its pipe.

After an out-of-memory failure the executor replaces the worker, so the next job starts
with all device memory released.

Cancel does not wait for the engine to look at `should_cancel`: the moment the flag turns
true, the job's thread is interrupted (JobCancelled raised at its next Python instruction),
so a cancel costs no worker restart (and no model reload) unless the engine swallows it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Iterator

from joker_core.errors import JobCancelled, JokerError
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


def worker_main(functions: EngineFunctions, tasks: Connection, results: Connection, cancel: ctypes.c_byte,
                server_pid: int) -> None:
    _exit_with_parent(server_pid)
    record_engine_info()
    if hasattr(os, "nice"):
        os.nice(5)  # a CPU job must not starve the server's answers (status polls, cancel)
    try:
        engine: Engine | JokerError = functions.load()
    except JokerError as error:
        engine = error  # every job fails with this message instead of a silent dead worker
    interrupt = _CancelInterrupt(cancel)
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
            ended = None
            try:
                with interrupt.armed():
                    ended = run_task(engine, task, results.send, lambda: bool(cancel.value))
            except JobCancelled:  # the interrupt came after the job's own handlers
                pass
            ended = ended or Ended(task.job_id, JobState.CANCELLED)
        results.send(ended)


class _CancelInterrupt:
    """While armed, a cancel request raises JobCancelled in the main thread (POSIX: a real
    signal, so a sleep or a blocking read ends too). Elsewhere the executor's kill after
    the grace period remains the only stop."""

    def __init__(self, cancel: ctypes.c_byte, poll_s: float = 0.02):
        self._cancel, self._poll_s = cancel, poll_s
        self._armed = False
        self._usable = hasattr(signal, "pthread_kill") and hasattr(signal, "SIGUSR1")
        if self._usable:
            signal.signal(signal.SIGUSR1, self._raise)
            threading.Thread(target=self._watch, name="joker-cancel-watch", daemon=True).start()

    @contextlib.contextmanager
    def armed(self) -> Iterator[None]:
        self._armed = True
        try:
            yield
        finally:
            self._armed = False

    def _raise(self, *_) -> None:
        if self._armed:
            self._armed = False  # once per job: cleanup code that runs next is not interrupted
            raise JobCancelled()

    def _watch(self) -> None:
        main = threading.main_thread().ident
        while True:
            time.sleep(self._poll_s)
            if self._armed and self._cancel.value:
                signal.pthread_kill(main, signal.SIGUSR1)
                while self._cancel.value:  # one signal per request
                    time.sleep(self._poll_s)


def _exit_with_parent(parent: int, poll_s: float = 0.1) -> None:
    """A server killed with -9 cannot stop its worker; the worker stops itself at once, so
    no job of a dead server goes on writing into its job folders. Linux: the kernel kills
    the worker with its parent; elsewhere a watcher notices within `poll_s`."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    if os.getppid() != parent:  # orphaned before the line above ran
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(poll_s)
        os._exit(1)

    threading.Thread(target=watch, name="joker-parent-watch", daemon=True).start()

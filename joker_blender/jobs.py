"""Running a generation without freezing Blender.

A worker thread does all network I/O (submit, follow the event stream, download) and puts
plain messages on a queue; a `bpy.app.timers` callback drains the queue on the main thread,
where all bpy access happens. In background mode (`blender -b`) `run_blocking` does the
same steps in order, so scripts get their result when the operator returns. Each preview the
server publishes is downloaded here too and handed over as a "preview" message; a sequence
job's runner also hands over each frame's head as soon as the server lists it.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from joker_core.client import JobFailed, JokerClient, ServerUnavailable
from joker_core.errors import JokerError
from joker_core.protocol import (SEQUENCE_GLB, SEQUENCE_MANIFEST, JobSpec, JobState, JobStatus, ProgressEvent,
                                 SequenceSpec, frame_artifact)

WATCH_S = 0.2  # how often the watcher passes a cancel on (and a sequence runner looks for frames)


@dataclass
class Submission:
    """Everything the worker thread needs; built on the main thread from the scene."""

    spec: JobSpec | SequenceSpec
    reference: Path
    normal_maps: dict[str, bytes]
    results_dir: Path
    url: str
    token: str | None
    rig: str = ""  # the armature the job was made from, to align the result with


@dataclass
class Message:
    kind: str  # "submitted" | "progress" | "preview" | "frame" | "done" | "failed" | "cancelled" | "interrupted"
    job_id: str = ""
    event: ProgressEvent | None = None
    files: list[Path] = field(default_factory=list)
    error: str = ""
    frame: int | None = None  # "frame": the scene frame whose head is in `files`; "preview": the frame it shows


# Messages whose handling is heavy on the main thread (decode a picture, import a GLB): at
# most one per timer tick, so one tick never does two of them.
HEAVY = frozenset({"preview", "frame", "done"})


class JobRunner:
    """One job's worker thread and its outbox."""

    def __init__(self, submission: Submission):
        self.submission = submission
        self.messages: queue.Queue[Message] = queue.Queue()
        self.job_id = ""
        self._cancel = threading.Event()
        self._ended = threading.Event()  # the job ended: the watcher stops
        self._thread = threading.Thread(target=self._run, name="joker-job", daemon=True)

    def start(self) -> "JobRunner":
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _client(self) -> JokerClient:
        return JokerClient(self.submission.url, token=self.submission.token or None)

    @property
    def folder(self) -> Path:
        """Where this job's files are downloaded to."""
        return self.submission.results_dir / self.job_id

    def _run(self) -> None:
        try:
            client = self._client()
            job = client.submit(self.submission.spec, self.submission.reference, self.submission.normal_maps)
            self.job_id = job.id
            self.messages.put(Message("submitted", job.id))
            watcher = threading.Thread(target=self._watch, args=(client,), daemon=True)
            watcher.start()
            try:
                status = self._follow(client, job.id)
            finally:
                self._ended.set()
                watcher.join()  # so nothing it sends comes after the end
            self.messages.put(Message("done", job.id, files=self._results(client, status)))
        except JobFailed as failure:
            self._keep_finished(client, failure.status)
            self.messages.put(Message(failure.status.state.value, self.job_id, error=self._with_logs(client, failure)))
        except JokerError as error:
            kind = "cancelled" if self._cancel.is_set() else "failed"
            self.messages.put(Message(kind, self.job_id, error=str(error)))
        except Exception as error:  # never let a thread die silently: the panel shows it
            self.messages.put(Message("failed", self.job_id, error=f"unexpected {type(error).__name__}: {error}"))

    def _follow(self, client: JokerClient, job_id: str) -> JobStatus:
        """Wait for the job's end (the client reconnects while the server is away); a job the
        server's restart interrupted is queued once more rather than lost."""
        def report(event: ProgressEvent) -> None:
            self.messages.put(Message("progress", job_id, event))
            if event.preview:
                self._fetch_preview(client, event)
        try:
            return client.wait(job_id, on_progress=report)
        except JobFailed as failure:
            if failure.status.state is not JobState.INTERRUPTED or self._cancel.is_set():
                raise
        self._when_back(client.requeue, job_id)
        report(ProgressEvent(stage="queued", message="the server restarted; the job was queued again"))
        return client.wait(job_id, on_progress=report)

    def _when_back(self, call: Callable, *args, timeout_s: float = 60.0):
        """`call(*args)`, waiting up to `timeout_s` for a server that is away (restarting:
        one that stops reports the interruption on its way down, and a job may end just
        before its server stops, with its files still to download)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return call(*args)
            except ServerUnavailable:
                if time.monotonic() > deadline or self._cancel.is_set():
                    raise
                time.sleep(0.5)

    def _download(self, client: JokerClient, name: str) -> Path:
        """One of the job's files into its folder."""
        return self._when_back(client.download, self.job_id, name, self.folder / name)

    def _fetch_preview(self, client: JokerClient, event: ProgressEvent) -> None:
        """Download the preview the server just published (live/...) and hand it over,
        with the frame it shows when the job is a sequence."""
        try:
            path = client.download(self.job_id, event.preview, self.folder / event.preview)
        except JokerError:
            return  # a newer preview follows, or the job's end says what went wrong
        self.messages.put(Message("preview", self.job_id, files=[path], frame=event.frame))

    def _with_logs(self, client: JokerClient, failure: JobFailed) -> str:
        """The server's error, and where the job's logs were downloaded to (if it has any)."""
        logs = [name for name in failure.status.artifacts if name.startswith("logs/")]
        folder = self.folder
        try:
            for name in logs:
                client.download(self.job_id, name, folder / name)
        except JokerError:
            logs = []
        where = f"its log is in {folder / 'logs'}" if logs else f"the server keeps its files under jobs/{self.job_id}"
        return f"{failure} ({where})"

    def _results(self, client: JokerClient, status: JobStatus) -> list[Path]:
        """A finished job's files, downloaded."""
        return [self._download(client, name) for name in status.artifacts]

    def _keep_finished(self, client: JokerClient, status: JobStatus) -> None:
        """What a job that did not succeed leaves worth keeping (a single head: nothing)."""

    def _while_running(self, client: JokerClient) -> None:
        """Called by the watcher every WATCH_S while the job runs."""

    def _watch(self, client: JokerClient) -> None:
        """Beside the event stream, until the job ends: pass a cancel on to the server."""
        cancel_sent = False
        while not self._ended.wait(WATCH_S):
            if self._cancel.is_set() and not cancel_sent:
                cancel_sent = True
                try:
                    client.cancel(self.job_id)
                except JokerError:
                    pass  # it finished meanwhile; the event stream reports the end
            self._while_running(client)


class SequenceRunner(JobRunner):
    """A sequence job's runner: each frame's head is downloaded and handed over ("frame"
    message) as soon as the server lists it, not at the end; a cancelled or failed
    sequence still hands over the frames it finished."""

    POLL_S = 0.5

    def __init__(self, submission: Submission):
        super().__init__(submission)
        spec = submission.spec
        self._pending = {frame_artifact(spec.frame_number(i)): spec.frame_number(i) for i in range(len(spec.frames))}
        self._polled = 0.0

    def _while_running(self, client: JokerClient) -> None:
        if time.monotonic() - self._polled < self.POLL_S:
            return
        self._polled = time.monotonic()
        try:
            self._collect_frames(client, client.status(self.job_id).artifacts)
        except JokerError:
            pass  # the server is restarting: a later poll, or the end, collects them

    def _results(self, client: JokerClient, status: JobStatus) -> list[Path]:
        """The frames not yet handed over, then the manifest and the animated object
        (sequence.glb, when the engine made one) into the job's folder."""
        self._collect_frames(client, status.artifacts)
        names = [SEQUENCE_MANIFEST] + ([SEQUENCE_GLB] if SEQUENCE_GLB in status.artifacts else [])
        return [self._download(client, name) for name in names]

    def _keep_finished(self, client: JokerClient, status: JobStatus) -> None:
        try:
            self._collect_frames(client, status.artifacts)
        except JokerError:
            pass  # the job's own error is the one to show

    def _collect_frames(self, client: JokerClient, artifacts) -> None:
        """Each newly listed frame: its folder (head, texture, turntable, metrics; the engine
        publishes it whole), then its head handed over."""
        listed = set(artifacts)
        for name in [name for name in self._pending if name in listed]:
            folder = name.rpartition("/")[0] + "/"
            for other in sorted(artifact for artifact in listed if artifact.startswith(folder) and artifact != name):
                self._download(client, other)
            path = self._download(client, name)
            self.messages.put(Message("frame", self.job_id, files=[path], frame=self._pending.pop(name)))


def drain(runner: JobRunner, handle: Callable[[Message], None], budget_s: float = 0.02) -> None:
    """Hand queued messages to `handle`, stopping after `budget_s` or after a HEAVY message
    so a timer callback never holds the UI thread for long; the rest waits for the next tick."""
    deadline = time.perf_counter() + budget_s
    while time.perf_counter() < deadline:
        try:
            message = runner.messages.get_nowait()
        except queue.Empty:
            return
        handle(message)
        if message.kind in HEAVY:
            return


def run_blocking(runner: JobRunner, handle: Callable[[Message], None]) -> None:
    """Background mode: run the job on this thread's watch and handle every message."""
    runner.start()
    while runner.alive or not runner.messages.empty():
        try:
            handle(runner.messages.get(timeout=0.1))
        except queue.Empty:
            continue

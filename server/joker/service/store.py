"""The job store: one SQLite database plus one folder per job.

Folder of a job: `inputs/` (the uploads, written before the row exists), `outputs/` (what
the engine produced, written atomically by it), `outputs.failed/` (what it left when it
failed), `live/` (previews published while it runs), `logs/` (a traceback when the
engine failed on a bug). The database is the truth
about states; a folder without a row is garbage that retention removes.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import IO, Any, Iterator

from joker_core.errors import JokerError
from joker_core.files import atomic_directory
from joker_core.protocol import JobSpec, JobState, JobStatus, ProgressEvent, SequenceSpec

from .errors import Conflict, NotFound
from .security import check_artifact_name, resolve_inside

# Artifact names starting with these name a file in that folder of the job; the rest are
# in outputs/. The engine leaves outputs.failed/ (its log, inputs, previews) when a job fails.
ARTIFACT_FOLDERS = {"live": "live", "logs": "logs", "failed": "outputs.failed"}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    keep INTEGER NOT NULL DEFAULT 0,
    spec TEXT NOT NULL,
    created_at REAL NOT NULL,
    queued_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    stage TEXT NOT NULL DEFAULT 'queued',
    progress REAL NOT NULL DEFAULT 0,
    eta_s REAL,
    prior_evaluations INTEGER NOT NULL DEFAULT 0,
    nerf_steps INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_queue ON jobs (state, priority DESC, queued_at, seq);
"""

_STATUS_COLUMNS = ("id", "state", "created_at", "priority", "keep", "started_at", "finished_at", "stage",
                   "progress", "eta_s", "prior_evaluations", "nerf_steps", "message", "error")
REQUEUE_HINT = "re-queue it with `joker jobs requeue {id}` (POST /v1/jobs/{id}/requeue)"


class JobStore:
    """Thread-safe: one connection behind a lock (SQLite serialises writers anyway)."""

    def __init__(self, database: Path, jobs_dir: Path):
        self.jobs_dir = Path(jobs_dir)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._owner = _lock_exclusively(Path(database).with_suffix(".lock"))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(database), check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL: a commit survives the server being killed (kill -9, crash), the
        # last ones may not survive a power cut; FULL would fsync on every progress event.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()
        self._owner.close()  # releases the lock

    # -- life of a job -------------------------------------------------------------------

    def create(self, spec: JobSpec | SequenceSpec, inputs: dict[str, bytes], priority: int = 0,
               keep: bool = False) -> JobStatus:
        job_id = uuid.uuid4().hex
        with atomic_directory(self.job_dir(job_id) / "inputs") as staging:
            for name, data in inputs.items():
                path = staging / check_artifact_name(name)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data)
        now = time.time()
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, state, priority, keep, spec, created_at, queued_at) VALUES (?,?,?,?,?,?,?)",
                (job_id, JobState.QUEUED.value, priority, int(keep), json.dumps(spec.to_dict()), now, now))
        return self.get(job_id)

    def claim_next(self) -> JobStatus | None:
        """The next queued job (highest priority, then first queued), now marked running."""
        with self._lock:
            row = self._db.execute(
                "UPDATE jobs SET state=?, started_at=?, stage='starting' WHERE seq = (SELECT seq FROM jobs "
                "WHERE state=? ORDER BY priority DESC, queued_at, seq LIMIT 1) RETURNING id",
                (JobState.RUNNING.value, time.time(), JobState.QUEUED.value)).fetchone()
        return None if row is None else self.get(row["id"])

    def record_progress(self, job_id: str, event: ProgressEvent) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET stage=?, progress=?, eta_s=?, prior_evaluations=?, nerf_steps=?, message=? "
                "WHERE id=? AND state=?",
                (event.stage, event.progress, event.eta_s, event.prior_evaluations, event.nerf_steps,
                 event.message, job_id, JobState.RUNNING.value))

    def finish(self, job_id: str, state: JobState, error: str | None = None) -> JobStatus:
        assert state.finished
        progress_sql = ", progress=1, eta_s=0, stage='done'" if state is JobState.SUCCEEDED else ", eta_s=NULL"
        with self._lock:
            self._db.execute(f"UPDATE jobs SET state=?, finished_at=?, error=?{progress_sql} WHERE id=?",
                             (state.value, time.time(), error, job_id))
        return self.get(job_id)

    def cancel_queued(self, job_id: str) -> JobStatus | None:
        """Cancel a job that has not started; None if it is not queued (any more)."""
        with self._lock:
            row = self._db.execute("UPDATE jobs SET state=?, finished_at=? WHERE id=? AND state=? RETURNING id",
                                   (JobState.CANCELLED.value, time.time(), job_id, JobState.QUEUED.value)).fetchone()
        return None if row is None else self.get(job_id)

    def requeue(self, job_id: str) -> JobStatus:
        """Run an ended job again, from scratch, behind the jobs already queued."""
        status = self.get(job_id)
        if status.state not in (JobState.INTERRUPTED, JobState.FAILED, JobState.CANCELLED):
            raise Conflict("state", f"job {job_id} is {status.state.value}",
                           "re-queue only interrupted, failed or cancelled jobs")
        for leftover in self.job_dir(job_id).iterdir():  # outputs, previews, staging of a killed run
            if leftover.name != "inputs":
                shutil.rmtree(leftover, ignore_errors=True)
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state=?, queued_at=?, started_at=NULL, finished_at=NULL, stage='queued', progress=0, "
                "eta_s=NULL, prior_evaluations=0, nerf_steps=0, message='', error=NULL WHERE id=?",
                (JobState.QUEUED.value, time.time(), job_id))
        return self.get(job_id)

    def delete(self, job_id: str) -> None:
        with self._lock:
            row = self._db.execute("DELETE FROM jobs WHERE id=? AND state!=? RETURNING id",
                                   (job_id, JobState.RUNNING.value)).fetchone()
        if row is None:
            self.get(job_id)  # 404 if it does not exist
            raise Conflict("state", f"job {job_id} is running", "cancel it first, then delete it")
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def recover(self) -> list[str]:
        """After a restart: jobs that were running when the server died are interrupted."""
        with self._lock:
            ids = [row["id"] for row in self._db.execute("SELECT id FROM jobs WHERE state=?",
                                                         (JobState.RUNNING.value,))]
        for job_id in ids:
            self.interrupt(job_id, "the server stopped while this job was running")
        return ids

    def interrupt(self, job_id: str, reason: str) -> JobStatus:
        return self.finish(job_id, JobState.INTERRUPTED, f"{reason}; Fix: {REQUEUE_HINT.format(id=job_id)}")

    # -- reading -------------------------------------------------------------------------

    def get(self, job_id: str) -> JobStatus:
        with self._lock:
            row = self._db.execute(f"SELECT {', '.join(_STATUS_COLUMNS)} FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise NotFound("job_id", f"no job {job_id[:64]!r}", "list jobs with GET /v1/jobs (joker jobs list)")
        values = dict(row)
        values["keep"] = bool(values["keep"])
        return JobStatus.from_dict({**values, "artifacts": self.artifacts(job_id)})

    def list(self, state: JobState | None = None, limit: int = 100) -> list[JobStatus]:
        query = "SELECT id FROM jobs" + (" WHERE state=?" if state else "") + " ORDER BY seq DESC LIMIT ?"
        with self._lock:
            ids = [row["id"] for row in self._db.execute(query, ((state.value,) if state else ()) + (limit,))]
        return [self.get(job_id) for job_id in ids]

    def spec(self, job_id: str) -> dict[str, Any]:
        with self._lock:
            row = self._db.execute("SELECT spec FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise NotFound("job_id", f"no job {job_id[:64]!r}", "list jobs with GET /v1/jobs")
        return json.loads(row["spec"])

    def queue_length(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM jobs WHERE state=?", (JobState.QUEUED.value,)).fetchone()[0]

    def job_dir(self, job_id: str) -> Path:
        return self.jobs_dir / job_id

    def artifacts(self, job_id: str) -> list[str]:
        job_dir = self.job_dir(job_id)
        names = [path.relative_to(job_dir / "outputs").as_posix() for path in _files(job_dir / "outputs")]
        for prefix, folder in ARTIFACT_FOLDERS.items():
            names += [f"{prefix}/{path.relative_to(job_dir / folder).as_posix()}" for path in _files(job_dir / folder)]
        return names

    def artifact_path(self, job_id: str, name: str) -> Path:
        self.get(job_id)
        folder, _, rest = check_artifact_name(name).partition("/")
        if folder in ARTIFACT_FOLDERS and rest:
            return resolve_inside(self.job_dir(job_id) / ARTIFACT_FOLDERS[folder], rest)
        return resolve_inside(self.job_dir(job_id) / "outputs", name)

    # -- retention -----------------------------------------------------------------------

    def apply_retention(self, max_age_s: float, max_bytes: int, now: float | None = None) -> list[str]:
        """Delete ended jobs older than `max_age_s`, then the oldest ended ones until the
        jobs fit in `max_bytes`. Queued, running and kept (`keep`) jobs are never deleted.
        Returns the deleted ids."""
        now = time.time() if now is None else now
        with self._lock:
            rows = self._db.execute("SELECT id, state, keep, finished_at FROM jobs ORDER BY seq").fetchall()
        known = {row["id"] for row in rows}
        for orphan in (p for p in self.jobs_dir.iterdir() if p.is_dir() and p.name not in known):
            shutil.rmtree(orphan, ignore_errors=True)  # a submit that died before its row existed
        sizes = {row["id"]: sum(p.stat().st_size for p in _files(self.job_dir(row["id"]))) for row in rows}
        total = sum(sizes.values())
        deletable = sorted((row for row in rows if JobState(row["state"]).finished and not row["keep"]),
                           key=lambda row: row["finished_at"] or 0.0)
        deleted = []
        for row in deletable:
            if now - (row["finished_at"] or now) > max_age_s or total > max_bytes:
                self.delete(row["id"])
                total -= sizes[row["id"]]
                deleted.append(row["id"])
        return deleted


def _files(folder: Path) -> Iterator[Path]:
    if folder.is_dir():
        # Dot names are work in progress (a sequence frame's staging folder): not artifacts yet.
        yield from sorted(path for path in folder.rglob("*") if path.is_file() and not path.is_symlink()
                          and not any(part.startswith(".") for part in path.relative_to(folder).parts))


def _lock_exclusively(path: Path) -> IO[str]:
    """One server per data folder: a second one would mark the first one's running job
    interrupted and race it for the queue. The lock dies with the process, even on kill -9."""
    handle = open(path, "a")
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; one server per folder is on the user
        return handle
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise JokerError(f"another Joker server is using {path.parent}",
                         "stop it (joker jobs lists its jobs), or start this one with a different --data-dir") from None
    return handle

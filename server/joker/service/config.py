"""Server settings, with the safe defaults spelled out in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from joker_core.client import DEFAULT_HOST, DEFAULT_PORT, default_token_file

from .tasks import ENGINE_JOB_FUNCTION as DEFAULT_JOB_FUNCTION


def user_data_dir() -> Path:
    if os.name == "nt" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "joker"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "joker"


@dataclass
class ServiceConfig:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    data_dir: Path = field(default_factory=user_data_dir)
    token_file: Path = field(default_factory=default_token_file)
    device: str = "auto"
    job_function: str = DEFAULT_JOB_FUNCTION  # "module:function", called in the worker
    sequence_function: str | None = None      # for specs with frames; None: see tasks.Engine.load
    max_upload_bytes: int = 64 * 1024 * 1024
    max_image_pixels: int = 4096 * 4096       # decompression-bomb guard
    max_view_pixels: int = 256 * 2**20        # views x pixels of one job's targets (published: 100 M)
    cancel_grace_s: float = 1.0               # then the worker is killed: cancel within 2 s
    retention_days: float = 30.0
    retention_bytes: int = 20 * 1024**3
    joker_weights: Path | None = None         # default weights of the "joker" prior, for /v1/info
    executor: str = "local"                   # "ray": jobs run on a Ray cluster (docs/cluster.md)
    ray_address: str | None = None            # None: Ray on this machine; "auto", "ray://host:port"
    ray_slots: int | None = None              # None: one per GPU of the cluster, else one per CPU

    @property
    def database(self) -> Path:
        return self.data_dir / "jobs.sqlite3"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

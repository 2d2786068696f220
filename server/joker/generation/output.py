"""A job's output folder: self-describing, and never half-written.

Work happens in a staging folder beside the destination. Success renames it into place;
failure renames it to `<name>.failed` so its inputs and log stay for inspection, and
nothing half-made is ever where a result is expected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
from importlib import metadata
from pathlib import Path
from typing import Iterator

import numpy as np

from joker_core.files import atomic_directory, atomic_write_bytes
from joker_core.png import encode_png
from joker_core.protocol import JobSpec, SequenceSpec

LOG_NAME = "log.txt"
_VERSIONED = ("joker-blender", "torch", "numpy", "diffusers", "trimesh", "xatlas", "PyMCubes", "opencv-python-headless")


def failed_folder(destination: Path) -> Path:
    return destination.with_name(destination.name + ".failed")


@contextlib.contextmanager
def job_folder(destination: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder, logged to, that becomes `destination` on success and
    `<dest>.failed` on error."""
    with atomic_directory(destination, overwrite, keep_failed_at=failed_folder(destination)) as staging:
        with _logging_to(staging / LOG_NAME):
            yield staging


class _JobLog(logging.FileHandler):
    """log.txt. On a full disk its failed writes stay quiet: the job's own error (which
    names the disk) is the one the user must see, not a logging traceback."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass  # the file keeps what was written before

    def close(self) -> None:
        with contextlib.suppress(OSError):  # the last flush meets the same full disk
            super().close()


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    handler = _JobLog(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("joker")
    logger.addHandler(handler)
    try:
        yield
    except BaseException:
        logger.exception("job failed")
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()


def record_engine_info() -> None:
    """Let the engine's INFO lines through to job logs. The entry points (CLI, server
    worker) call this once; a job never changes the level, so a script that embeds the
    engine keeps the logging it configured."""
    logging.getLogger("joker").setLevel(logging.INFO)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def write_inputs(folder: Path, photo: np.ndarray, spec: JobSpec | SequenceSpec) -> None:
    """What every job folder starts with: the photo as the engine read it, the spec
    (JobSpec or SequenceSpec), and the versions that ran it."""
    atomic_write_bytes(folder / "inputs" / "reference.png", encode_png(photo))
    write_json(folder / "inputs" / "spec.json", spec.to_dict())
    model = (spec.job if isinstance(spec, SequenceSpec) else spec).model
    write_json(folder / "versions.json", {**versions(), "model": model or "demo head"})


def write_json(path: Path, data: dict) -> Path:
    return atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

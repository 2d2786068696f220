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
import shutil
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Iterator

from joker_core.errors import JokerError
from joker_core.files import atomic_write_bytes

LOG_NAME = "log.txt"
_VERSIONED = ("joker-blender", "torch", "numpy", "diffusers", "trimesh", "xatlas", "PyMCubes", "opencv-python-headless")


def failed_folder(destination: Path) -> Path:
    return destination.with_name(destination.name + ".failed")


@contextlib.contextmanager
def job_folder(destination: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder that becomes `destination` on success, `<dest>.failed` on error."""
    if destination.exists() and any(destination.iterdir()) and not overwrite:
        raise JokerError(f"output folder {destination} exists and is not empty",
                         "choose a new folder, or pass --overwrite")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent))
    except OSError as exc:
        raise JokerError(f"cannot write into {destination.parent} ({exc.strerror})",
                         "choose an output folder on a writable disk with free space") from exc
    with _logging_to(staging / LOG_NAME):
        try:
            yield staging
        except BaseException:
            logging.getLogger("joker").exception("job failed")
            failed = failed_folder(destination)
            shutil.rmtree(failed, ignore_errors=True)
            staging.replace(failed)
            raise
    if destination.exists():
        shutil.rmtree(destination)
    staging.replace(destination)


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("joker")
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)
        handler.close()


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in _VERSIONED:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def write_json(path: Path, data: dict) -> Path:
    return atomic_write_bytes(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode())

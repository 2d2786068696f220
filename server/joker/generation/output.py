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

from joker_core.files import atomic_directory, atomic_write_bytes

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
    except BaseException:
        logger.exception("job failed")
        raise
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

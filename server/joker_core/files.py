"""Reading inputs that may be the wrong kind of path, and writing outputs so that a
failure never leaves a half-written file or folder behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import JokerError


IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".mpo")


def input_file(path: str | os.PathLike, what: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path:
    """`path` if it is a file to read; else a one-line JokerError that says whether it is
    missing or a folder (naming a file in it that would do)."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        try:
            fitting = sorted(p.name for p in path.iterdir() if p.suffix.lower() in suffixes and p.is_file())
        except OSError:
            fitting = []
        example = f", e.g. {path / fitting[0]}" if fitting else ""
        raise JokerError(f"{what} {path} is a folder, not a file", f"give the path of one {what} file{example}")
    raise JokerError(f"{what} {path} does not exist", f"check the path; give the path of a {what} file")


def _writable_parent(path: Path) -> Path:
    parent = path.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JokerError(f"cannot create folder {parent}: {exc.strerror}",
                         "choose an output path in a folder you can write to") from exc
    if not os.access(parent, os.W_OK):
        raise JokerError(f"folder {parent} is not writable",
                         "choose an output path in a folder you can write to")
    return parent


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file and a rename."""
    path = Path(path)
    parent = _writable_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=parent)
    except OSError as exc:
        raise JokerError(f"cannot write into {parent} ({exc.strerror})",
                         "choose a folder on a writable disk with free space") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise JokerError(f"cannot write {path} ({exc.strerror})",
                         "free some disk space or choose another folder") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def _refuse_to_overwrite(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite and any(path.iterdir()):
        raise JokerError(f"output folder {path} exists and is not empty",
                         "pass an empty or new folder, or allow overwriting (--overwrite)")


def fresh_folder(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """An empty folder at `path`, for output that is read while it is written (a sequence's
    frames land one by one); what atomic_directory refuses, this refuses too."""
    path = Path(path)
    _refuse_to_overwrite(path, overwrite)
    _writable_parent(path)
    try:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
    except OSError as exc:
        raise JokerError(f"cannot create {path} ({exc.strerror})",
                         "choose an output folder on a writable disk with free space") from exc
    return path


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, overwrite: bool = False,
                     keep_failed_at: Path | None = None) -> Iterator[Path]:
    """Yield a staging folder that becomes `path` only if the block finishes.

    On any exception `path` is left as it was, and the staging folder is removed, or moved
    to `keep_failed_at` (replacing what was there) so a failure can be inspected.
    """
    path = Path(path)
    _refuse_to_overwrite(path, overwrite)
    parent = _writable_parent(path)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=parent))
    except OSError as exc:
        raise JokerError(f"cannot write into {parent} ({exc.strerror})",
                         "choose an output folder on a writable disk with free space") from exc
    try:
        yield staging
    except BaseException:
        if keep_failed_at is None:
            shutil.rmtree(staging, ignore_errors=True)
        else:
            shutil.rmtree(keep_failed_at, ignore_errors=True)
            os.replace(staging, keep_failed_at)
        raise
    if path.exists():
        shutil.rmtree(path)
    os.replace(staging, path)

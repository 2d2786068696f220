"""The demo head's on-disk cache: a Joker .npz (flame_format) per generator version in the
user's cache folder, with a SHA-256 of the file beside it.

A file that is missing, fails its checksum, or does not load and validate is treated as
absent, so a damaged cache is rebuilt and never trusted. Loading never unpickles.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..files import atomic_write_bytes
from ..flame_format import load_head_model, save_head_model
from ..head_model import HeadModel


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "joker"


def _checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def write_model(path: Path, model: HeadModel) -> None:
    """Cache `model` at `path` and drop heads cached by other generator versions beside it."""
    save_head_model(model, path)
    atomic_write_bytes(_checksum_path(path), hashlib.sha256(path.read_bytes()).hexdigest().encode())
    stem = path.name.split("-v")[0]
    for stale in path.parent.glob(f"{stem}-v*"):
        if stale not in (path, _checksum_path(path)):
            stale.unlink(missing_ok=True)


def read_model(path: Path) -> HeadModel:
    """The model cached at `path`; ValueError if the file does not match its checksum
    (OSError if either file is missing, JokerError if it does not load)."""
    expected = _checksum_path(path).read_text().strip()
    if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise ValueError(f"{path} does not match its checksum")
    return load_head_model(path)

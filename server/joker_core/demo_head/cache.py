"""The demo head's on-disk cache: one .npz per generator version in the user's cache folder.

Files are read with allow_pickle=False and carry a SHA-256 of their arrays and labels; a
file that fails to open, to match its checksum or to validate is treated as missing, so
a damaged cache is rebuilt and never trusted.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np

from ..files import atomic_write_bytes
from ..head_model import HeadModel

ARRAY_FIELDS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "faces",
                "uv_coords", "uv_faces", "face_region")
LABEL_FIELDS = ("n_shape", "n_expr", "name", "is_demo", "expression_names", "landmarks", "metadata")


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "joker"


def _digest(arrays: dict[str, np.ndarray], labels: str) -> str:
    digest = hashlib.sha256(labels.encode())
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def write_model(path: Path, model: HeadModel) -> None:
    arrays = {name: getattr(model, name) for name in ARRAY_FIELDS}
    labels = json.dumps({name: getattr(model, name) for name in LABEL_FIELDS}, sort_keys=True)
    buffer = io.BytesIO()
    np.savez(buffer, labels=np.array(labels), sha256=np.array(_digest(arrays, labels)), **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_model(path: Path) -> HeadModel:
    """The model stored at `path`; ValueError (or OSError) if it is not intact."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in ARRAY_FIELDS}
        labels, checksum = str(stored["labels"]), str(stored["sha256"])
    if _digest(arrays, labels) != checksum:
        raise ValueError(f"{path} does not match its checksum")
    fields = json.loads(labels)
    fields["expression_names"] = tuple(fields["expression_names"])
    return HeadModel(**arrays, **fields).validate()

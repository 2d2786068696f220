"""Head model files: the official FLAME `.pkl` (read) and Joker's own `.npz` (read and write).

The FLAME pickle is read as data only (legacy_pickle); the `.npz` form holds every
HeadModel field, extras included, with text fields as JSON and no pickled objects.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import JokerError
from .files import atomic_write_bytes, input_file
from .head_model import HeadModel
from .legacy_pickle import as_array, load_data_pickle

FLAME_SHAPE_COMPONENTS = 300  # FLAME's shapedirs: 300 identity components, then expression
NPZ_FORMAT = "joker-head-model/1"
_FLAME_KEYS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f")
_USE_A_MODEL_FILE = "pass an official FLAME 2020/2023 .pkl or a Joker .npz head model"
# Checked before a byte is parsed, so a wrong or huge file costs a stat and a few bytes.
# Official FLAME files are under 200 MB; a Joker .npz of one is about as large.
MAX_MODEL_BYTES = 512 * 2**20
_FIRST_BYTES = {".pkl": (b"\x80", b"(", b"}"),  # protocol 2+; a protocol 0 or 1 dict
                ".npz": (b"PK\x03\x04",)}      # a zip file's first entry


def load_head_model(path: str | os.PathLike) -> HeadModel:
    """Read a `.pkl` (official FLAME) or `.npz` (Joker) head model and validate it."""
    path = Path(path)
    readers = {".pkl": _read_flame_pickle, ".npz": _read_npz}
    reader = readers.get(path.suffix.lower())
    if reader is None:
        raise JokerError(f"head model file {path} has extension '{path.suffix}', which is not a head model format",
                         _USE_A_MODEL_FILE)
    _check_size_and_header(input_file(path, "head model", tuple(readers)))
    return reader(path).validate()


def _check_size_and_header(path: Path) -> None:
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise JokerError(f"head model file {path} is {size / 2**20:.0f} MiB, more than any head model "
                         f"({MAX_MODEL_BYTES // 2**20} MiB at most): it was not read", _USE_A_MODEL_FILE)
    with open(path, "rb") as handle:
        start = handle.read(4)
    if not start.startswith(_FIRST_BYTES[path.suffix.lower()]):
        kind = "pickle" if path.suffix.lower() == ".pkl" else "zip (.npz)"
        raise JokerError(f"head model file {path} does not start like a {kind} file: it is damaged or "
                         "not a head model", _USE_A_MODEL_FILE)


def _read_flame_pickle(path: Path) -> HeadModel:
    with open(path, "rb") as handle:  # parsed as read: no second copy of the whole file
        content = load_data_pickle(handle, source=str(path))
    if not isinstance(content, dict):
        raise JokerError(f"{path} holds a pickled {type(content).__name__}, not a FLAME model", _USE_A_MODEL_FILE)
    missing = [key for key in _FLAME_KEYS if key not in content]
    if missing:
        raise JokerError(f"{path} is a pickle but not a FLAME model: it lacks {', '.join(missing)}",
                         _USE_A_MODEL_FILE)
    arrays = {key: as_array(content[key], key, str(path)) for key in _FLAME_KEYS}
    floats = {key: _as_float(arrays[key]) for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights")}
    components = floats["shapedirs"].shape[-1] if floats["shapedirs"].ndim == 3 else 0
    n_shape = min(components, FLAME_SHAPE_COMPONENTS)
    labels = {key: str(content[key]) for key in ("bs_style", "bs_type") if isinstance(content.get(key), str)}
    return HeadModel(
        **floats,
        kintree_table=_as_int(arrays["kintree_table"], "kintree_table", path),
        faces=_as_int(arrays["f"], "f", path),
        n_shape=n_shape,
        n_expr=components - n_shape,
        name="FLAME",
        metadata={"format": "FLAME pickle", "source_file": path.name, **labels,
                  "licence": "FLAME model licence (flame.is.tue.mpg.de); not redistributed with Joker"},
    )


def _as_float(array: np.ndarray) -> np.ndarray:
    """Numbers become float64; anything else is left for HeadModel.validate to name."""
    return array.astype(np.float64) if np.issubdtype(array.dtype, np.number) else array


def _as_int(array: np.ndarray, field: str, path: Path) -> np.ndarray:
    if not np.issubdtype(array.dtype, np.integer):
        raise JokerError(f"{path}: field '{field}' has dtype {array.dtype}, expected integers", _USE_A_MODEL_FILE)
    return array.astype(np.int64)  # FLAME's root parent is uint32 max; int64 holds it


_ARRAY_FIELDS = ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "faces")
_OPTIONAL_ARRAYS = ("uv_coords", "uv_faces", "face_region")


def save_head_model(model: HeadModel, path: str | os.PathLike) -> Path:
    """Write `model` as a Joker `.npz` atomically: every field, extras and metadata included."""
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise JokerError(f"cannot save a head model as '{path.suffix}'", "give the output file the .npz extension")
    model.validate()
    try:
        text = {"landmarks": json.dumps({k: int(v) for k, v in model.landmarks.items()}),
                "metadata": json.dumps(model.metadata)}
    except (TypeError, ValueError) as exc:
        raise JokerError(f"head model metadata cannot be written as JSON ({exc})",
                         "keep metadata to strings, numbers, lists and dicts") from None
    arrays: dict[str, np.ndarray] = {name: getattr(model, name) for name in _ARRAY_FIELDS}
    arrays.update({name: getattr(model, name) for name in _OPTIONAL_ARRAYS if getattr(model, name) is not None})
    arrays.update(
        format=np.array(NPZ_FORMAT), name=np.array(model.name), is_demo=np.array(model.is_demo),
        n_shape=np.array(model.n_shape), n_expr=np.array(model.n_expr),
        expression_names=np.array(model.expression_names, dtype=str), **{f"{k}_json": np.array(v) for k, v in text.items()},
    )
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write_bytes(path, buffer.getvalue())


def _read_npz(path: Path) -> HeadModel:
    try:
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            stored = {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise JokerError(f"{path} is not a readable .npz head model (truncated or damaged: {exc})",
                         "write the file again with save_head_model, or " + _USE_A_MODEL_FILE) from None
    if "format" not in stored or _scalar(stored, "format", path) != NPZ_FORMAT:
        raise JokerError(f"{path} is an .npz file but not a {NPZ_FORMAT} head model", _USE_A_MODEL_FILE)
    try:
        landmarks = json.loads(_scalar(stored, "landmarks_json", path))
        metadata = json.loads(_scalar(stored, "metadata_json", path))
    except json.JSONDecodeError as exc:
        raise JokerError(f"{path}: landmarks or metadata are not valid JSON ({exc})", "write the file again") from None
    return HeadModel(
        **{name: _field(stored, name, path) for name in _ARRAY_FIELDS},
        **{name: stored.get(name) for name in _OPTIONAL_ARRAYS},
        n_shape=int(_scalar(stored, "n_shape", path)),
        n_expr=int(_scalar(stored, "n_expr", path)),
        name=str(_scalar(stored, "name", path)),
        is_demo=bool(_scalar(stored, "is_demo", path)),
        expression_names=tuple(str(n) for n in _field(stored, "expression_names", path)),
        landmarks=landmarks,
        metadata=metadata,
    )


def _field(stored: dict[str, np.ndarray], name: str, path: Path) -> np.ndarray:
    if name not in stored:
        raise JokerError(f"{path} lacks the head model field '{name}'", "write the file again with save_head_model")
    return stored[name]


def _scalar(stored: dict[str, np.ndarray], name: str, path: Path) -> Any:
    value = _field(stored, name, path)
    if value.size != 1:
        raise JokerError(f"{path}: '{name}' holds {value.size} values, expected one", "write the file again")
    return value.item()

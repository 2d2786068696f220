"""Reading Python-2-era scientific pickles (FLAME, SMPL) as data, never as code.

The official FLAME files are pickled dicts whose arrays are partly chumpy `Ch` objects and
whose joint regressor is a scipy sparse matrix. A normal `pickle.load` would import chumpy
and scipy and call whatever the file names. Here `find_class` allows only what rebuilds
numpy arrays, maps chumpy and scipy.sparse classes to inert stand-ins that just keep their
pickled state, and refuses everything else before it can run.
"""

from __future__ import annotations

import _compat_pickle  # the stdlib's Python 2 -> 3 name table, as pickle itself uses
import codecs
import copyreg
import importlib
import io
import pickle
import struct
from typing import Any, BinaryIO

import numpy as np

from .errors import JokerError


def _numpy_attr(modules: tuple[str, ...], name: str) -> Any:
    """Resolve `name` from the first importable numpy module (numpy 1 vs 2 moved `core`)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"numpy has no {name} in {modules}")


_MULTIARRAY = ("numpy._core.multiarray", "numpy.core.multiarray")
_NUMERIC = ("numpy._core.numeric", "numpy.core.numeric")


class PickledObject:
    """An inert stand-in for a chumpy or scipy.sparse object: its class name and state."""

    source_class = "?"

    def __init__(self, *args: Any) -> None:
        self.args = args
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<pickled {self.source_class}>"


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """`_codecs.encode` as Python 3 protocol-2 pickles use it for bytes; latin-1 only."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _reconstructor(cls: type, base: type, state: Any) -> Any:
    """`copyreg._reconstructor` (protocol 0/1 objects), limited to stand-ins on `object`."""
    if not (isinstance(cls, type) and issubclass(cls, PickledObject)) or base is not object:
        raise pickle.UnpicklingError(f"copyreg._reconstructor for {cls!r} on {base!r}")
    return copyreg._reconstructor(cls, base, state)


_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _latin1_encode,
    ("builtins", "set"): set,          # chumpy keeps `_dirty_vars` as a set
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("copyreg", "_reconstructor"): _reconstructor,
}
for _module in _MULTIARRAY:
    _ALLOWED[(_module, "_reconstruct")] = _numpy_attr(_MULTIARRAY, "_reconstruct")
    _ALLOWED[(_module, "scalar")] = _numpy_attr(_MULTIARRAY, "scalar")
for _module in _NUMERIC:
    _ALLOWED[(_module, "_frombuffer")] = _numpy_attr(_NUMERIC, "_frombuffer")

_STAND_IN_PACKAGES = ("chumpy", "scipy.sparse")


class RefusedClass(pickle.UnpicklingError):
    """The pickle names a class or function that is not plain data."""

    def __init__(self, qualified_name: str):
        super().__init__(qualified_name)
        self.qualified_name = qualified_name


_STAND_INS: dict[str, type[PickledObject]] = {}


def _stand_in(qualified: str) -> type[PickledObject]:
    """One stand-in class per pickled class name, so errors can name what the file held."""
    if qualified not in _STAND_INS:
        _STAND_INS[qualified] = type(qualified.rsplit(".", 1)[-1], (PickledObject,), {"source_class": qualified})
    return _STAND_INS[qualified]


def _python3_name(module: str, name: str) -> tuple[str, str]:
    """Python 2 spellings (`__builtin__`, `copy_reg`, ...) as Python 3 names them."""
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        module, name = _python3_name(module, name)
        allowed = _ALLOWED.get((module, name))
        if allowed is not None:
            return allowed
        qualified = f"{module}.{name}"
        if any(module == p or module.startswith(p + ".") for p in _STAND_IN_PACKAGES):
            return _stand_in(qualified)
        raise RefusedClass(qualified)


def load_data_pickle(data: bytes | BinaryIO, source: str) -> Any:
    """Unpickle `data`, bytes or a binary file read as it goes (Python 2 strings read as
    latin-1), without running anything.

    `source` names the file in errors. A refused class, a truncated or damaged stream:
    each is a JokerError.
    """
    stream: BinaryIO = io.BytesIO(data) if isinstance(data, (bytes, bytearray)) else data
    try:
        return _DataOnlyUnpickler(stream, encoding="latin1").load()
    except RefusedClass as refused:
        raise JokerError(f"{source} asks to load '{refused.qualified_name}', which is code, not model "
                         "data; it was refused and nothing was run",
                         "use the official FLAME .pkl or a Joker .npz head model from a source you trust") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, LookupError,
            AttributeError, MemoryError, UnicodeError, struct.error) as damaged:
        raise JokerError(f"{source} is not a readable pickle (truncated or damaged: {damaged})",
                         "download the model file again") from None


def as_array(value: Any, field: str, source: str) -> np.ndarray:
    """The numpy array behind a pickled value: an ndarray, a chumpy `Ch` (its `x`), or a
    scipy CSC/CSR sparse matrix (densified)."""
    if isinstance(value, PickledObject):
        if value.source_class.startswith("chumpy.") and isinstance(value.state, dict) and "x" in value.state:
            return as_array(value.state["x"], field, source)
        if value.source_class.rsplit(".", 1)[-1] in _SPARSE_LAYOUTS:
            return _densify(value, field, source)
        raise JokerError(f"{source}: field '{field}' is a {value.source_class}, which holds no stored array",
                         "use the official FLAME .pkl or a Joker .npz head model")
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise JokerError(f"{source}: field '{field}' is not an array ({exc})",
                         "use the official FLAME .pkl or a Joker .npz head model") from None


# Sparse layouts by class name: True when `indptr` runs over columns (CSC), False for rows.
_SPARSE_LAYOUTS = {"csc_matrix": True, "csc_array": True, "csr_matrix": False, "csr_array": False}


def _densify(matrix: PickledObject, field: str, source: str) -> np.ndarray:
    state = matrix.state if isinstance(matrix.state, dict) else {}
    try:
        shape = tuple(int(n) for n in state.get("_shape", state.get("shape")))
        data = np.asarray(state["data"], dtype=np.float64)
        indices = np.asarray(state["indices"], dtype=np.int64)
        indptr = np.asarray(state["indptr"], dtype=np.int64)
        by_column = _SPARSE_LAYOUTS[matrix.source_class.rsplit(".", 1)[-1]]
        outer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        rows, cols = (indices, outer) if by_column else (outer, indices)
        dense = np.zeros(shape, dtype=np.float64)
        np.add.at(dense, (rows, cols), data)  # duplicate entries add up, as in scipy
    except (LookupError, TypeError, ValueError, MemoryError) as exc:
        raise JokerError(f"{source}: sparse field '{field}' is damaged ({exc})",
                         "download the model file again") from None
    return dense

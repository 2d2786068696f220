"""A small synthetic head in FLAME's layout, and a writer for FLAME's official `.pkl` layout.

`make_small_head_model()` is a closed ellipsoid "head" (a few hundred vertices) with FLAME's
five joints (global, neck, jaw, eyes), skinning weights that sum to one, a jaw region at
the lower front, and pose correctives only where a joint has weight. It also carries the
optional extras (UVs, face region, a nose-tip landmark) so renderers can reuse it.

`write_official_layout_pkl()` writes it the way the distributed FLAME files are: a
protocol-2 Python 2 pickle (strings as Python 2 `str`), `shapedirs` and `weights` as
chumpy `Ch` objects and `J_regressor` as a scipy CSC matrix, without chumpy or scipy.
"""

from __future__ import annotations

import pickle
import struct
from pathlib import Path

import numpy as np

from joker_core.head_model import HeadModel

JOINT_TARGETS = np.array([
    [0.0, -0.105, 0.0],     # global (root), at the bottom of the neck
    [0.0, -0.07, -0.01],    # neck
    [0.0, -0.03, 0.03],     # jaw
    [0.032, 0.025, 0.07],   # left eye (+x is the subject's left)
    [-0.032, 0.025, 0.07],  # right eye
])
RADII = np.array([0.08, 0.11, 0.09])
FLAME_ROOT_PARENT = 4294967295  # how the official kintree_table marks the root (uint32 max)


def _ellipsoid(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces (outward winding) and per-vertex (lon, lat) UVs of a closed ellipsoid."""
    lat = np.linspace(0.0, np.pi, n_lat + 2)[1:-1]
    lon = np.linspace(0.0, 2 * np.pi, n_lon, endpoint=False)
    lat_grid, lon_grid = np.meshgrid(lat, lon, indexing="ij")
    ring = np.stack([np.sin(lat_grid) * np.sin(lon_grid), np.cos(lat_grid), np.sin(lat_grid) * np.cos(lon_grid)], -1)
    unit = np.concatenate([[[0.0, 1.0, 0.0]], ring.reshape(-1, 3), [[0.0, -1.0, 0.0]]])
    top, bottom = 0, len(unit) - 1

    def index(i: int, j: int) -> int:
        return 1 + i * n_lon + j % n_lon

    faces = []
    for j in range(n_lon):
        faces.append((top, index(0, j), index(0, j + 1)))
        faces.append((bottom, index(n_lat - 1, j + 1), index(n_lat - 1, j)))
        for i in range(n_lat - 1):
            a, b, c, d = index(i, j), index(i, j + 1), index(i + 1, j), index(i + 1, j + 1)
            faces += [(a, c, b), (b, c, d)]
    uv = np.concatenate([[[0.5, 1.0]], np.stack([lon_grid / (2 * np.pi), 1 - lat_grid / np.pi], -1).reshape(-1, 2),
                         [[0.5, 0.0]]])
    return unit * RADII, np.asarray(faces, dtype=np.int64), uv


def _weights(vertices: np.ndarray) -> np.ndarray:
    x, y, z = vertices.T
    root = np.clip((-0.09 - y) / 0.02, 0.0, 1.0)
    jaw = np.clip((-0.01 - y) / 0.03, 0.0, 1.0) * np.clip(z / 0.04, 0.0, 1.0) * (y > -0.085)
    eyes = [np.clip(1.0 - np.linalg.norm(vertices - JOINT_TARGETS[k], axis=1) / 0.035, 0.0, 1.0) for k in (3, 4)]
    others = np.stack([root, jaw, *eyes], axis=1)
    total = others.sum(axis=1, keepdims=True)
    others = np.where(total > 1.0, others / np.maximum(total, 1e-12), others)
    neck = 1.0 - others.sum(axis=1)
    return np.column_stack([others[:, 0], neck, others[:, 1:]])


def _joint_regressor(vertices: np.ndarray, neighbours: int = 8) -> np.ndarray:
    """Each joint as a normalised Gaussian average of its nearest surface vertices."""
    regressor = np.zeros((len(JOINT_TARGETS), len(vertices)))
    for joint, target in enumerate(JOINT_TARGETS):
        distance = np.linalg.norm(vertices - target, axis=1)
        nearest = np.argsort(distance)[:neighbours]
        kernel = np.exp(-(distance[nearest] / 0.02) ** 2)
        regressor[joint, nearest] = kernel / kernel.sum()
    return regressor


def make_small_head_model(n_shape: int = 300, n_expr: int = 100, n_lat: int = 14, n_lon: int = 24,
                          seed: int = 0) -> HeadModel:
    """The synthetic test head (deterministic for a given seed); 2 + n_lat * n_lon vertices."""
    rng = np.random.default_rng(seed)
    vertices, faces, uv = _ellipsoid(n_lat, n_lon)
    weights = _weights(vertices)
    n = len(vertices)
    # Pose correctives only where the joint has influence, as in a real rig.
    posedirs = rng.normal(scale=2e-3, size=(n, 3, 4, 9)) * (weights[:, None, 1:, None] > 0)
    nose_tip = int(np.argmax(vertices[:, 2]))
    return HeadModel(
        v_template=vertices,
        shapedirs=rng.normal(scale=1e-3, size=(n, 3, n_shape + n_expr)),
        posedirs=posedirs.reshape(n, 3, 36),
        J_regressor=_joint_regressor(vertices),
        weights=weights,
        kintree_table=np.array([[FLAME_ROOT_PARENT, 0, 1, 1, 1], [0, 1, 2, 3, 4]], dtype=np.int64),
        faces=faces,
        n_shape=n_shape,
        n_expr=n_expr,
        name="synthetic FLAME-layout test head",
        uv_coords=uv,
        uv_faces=faces.copy(),
        face_region=(vertices[:, 2] > 0.03) & (vertices[:, 1] > -0.06),
        landmarks={"nose_tip": nose_tip},
        metadata={"generator": "tests/flame_fixtures.py", "seed": seed},
    ).validate()


class _Ch:
    """Pickles as chumpy.ch.Ch, with the instance state chumpy's __getstate__ leaves."""

    pickled_as = ("chumpy.ch", "Ch")

    def __init__(self, x: np.ndarray):
        self.x = x
        self._dirty_vars = {"x"}
        self._itr = None
        self._depends_on_deps = {}
        self._make_dense = False
        self._make_sparse = False


class _CscMatrix:
    """Pickles as scipy.sparse.csc.csc_matrix (the old module path the FLAME files use)."""

    pickled_as = ("scipy.sparse.csc", "csc_matrix")

    def __init__(self, dense: np.ndarray):
        rows, cols = np.nonzero(dense.T)  # column-major order: per column, its non-zero rows
        self.data = dense.T[rows, cols]
        self.indices = cols.astype(np.int32)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=dense.shape[1]))]).astype(np.int32)
        self._shape = dense.shape
        self.maxprint = 50
        self.format = "csc"


class _Python2Pickler(pickle._Pickler):
    """Writes text and bytes as Python 2 `str` opcodes, and the stand-ins under the names
    they pretend to (so chumpy and scipy never need to exist)."""

    def save_python2_str(self, obj: str | bytes) -> None:
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[str] = save_python2_str
    dispatch[bytes] = save_python2_str

    def save_global(self, obj, name=None):
        if hasattr(obj, "pickled_as"):
            module, qualname = obj.pickled_as
            self.write(pickle.GLOBAL + f"{module}\n{qualname}\n".encode())
            self.memoize(obj)
        else:
            super().save_global(obj, name)


class RunsCommand:
    """Pickles as a call of `call` = (function, args): what a malicious file would hold."""

    def __init__(self, call):
        self.call = call

    def __reduce__(self):
        return self.call


def official_layout_dict(model: HeadModel) -> dict:
    """The dict a FLAME 2020/2023 pickle holds, built from `model`."""
    return {
        "f": model.faces.astype(np.uint32),
        "J_regressor": _CscMatrix(model.J_regressor),
        "kintree_table": model.kintree_table.astype(np.int64),
        "J": model.J_regressor @ model.v_template,
        "bs_style": "lbs",
        "weights": _Ch(model.weights),
        "posedirs": model.posedirs,
        "v_template": model.v_template,
        "shapedirs": _Ch(model.shapedirs),
        "bs_type": "lrotmin",
        "joint2num": {"global": 0, "neck": 1, "jaw": 2, "eye_left": 3, "eye_right": 4},
    }


def write_python2_pickle(content: object, path: str | Path, protocol: int = 2) -> None:
    """Pickle `content` as Python 2 would, the stand-ins under their chumpy/scipy names."""
    with open(path, "wb") as handle:
        _Python2Pickler(handle, protocol=protocol).dump(content)


def write_official_layout_pkl(path: str | Path, model: HeadModel | None = None, protocol: int = 2) -> HeadModel:
    """Write `model` (default: the small head) in the official FLAME layout; returns it."""
    model = model if model is not None else make_small_head_model()
    write_python2_pickle(official_layout_dict(model), path, protocol)
    return model

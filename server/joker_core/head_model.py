"""The head model every rig uses: FLAME's layout, plus optional extras the demo head fills.

Joints follow FLAME: 0 global (root), 1 neck, 2 jaw, 3 left eye, 4 right eye. Vertices
are in metres in the FLAME frame (conventions.py). `validate()` names the wrong field and
what was expected, so a bad file never reaches the maths.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from .errors import JokerError

JOINT_NAMES = ("global", "neck", "jaw", "eye_left", "eye_right")


@dataclass
class HeadModel:
    v_template: np.ndarray      # N x 3 float
    shapedirs: np.ndarray       # N x 3 x (n_shape + n_expr) float: identity, then expression
    posedirs: np.ndarray        # N x 3 x 9(J-1) float: pose-corrective blendshapes
    J_regressor: np.ndarray     # J x N float (dense)
    weights: np.ndarray         # N x J float: skinning weights
    kintree_table: np.ndarray   # 2 x J int: row 0 parents (root's parent is ignored), row 1 ids
    faces: np.ndarray           # F x 3 int
    n_shape: int
    n_expr: int
    name: str = "FLAME"
    is_demo: bool = False
    expression_names: tuple[str, ...] = ()  # semantic names per expression component, if any
    uv_coords: np.ndarray | None = None     # T x 2 in [0, 1], origin bottom-left (OBJ/glTF-free)
    uv_faces: np.ndarray | None = None      # F x 3 int into uv_coords
    face_region: np.ndarray | None = None   # N bool: the "face region" normal-map mode
    landmarks: dict[str, int] = field(default_factory=dict)  # named vertex ids (nose_tip, ...)
    metadata: dict = field(default_factory=dict)  # provenance, licence, labels

    @property
    def n_vertices(self) -> int:
        return int(self.v_template.shape[0])

    @property
    def n_joints(self) -> int:
        return int(self.kintree_table.shape[1])

    @property
    def parents(self) -> np.ndarray:
        parents = self.kintree_table[0].astype(np.int64).copy()
        parents[0] = -1
        return parents

    def validate(self) -> "HeadModel":
        n, j = self.n_vertices, self.n_joints
        k = self.n_shape + self.n_expr
        expected = {
            "v_template": (n, 3),
            "shapedirs": (n, 3, k),
            "posedirs": (n, 3, 9 * (j - 1)),
            "J_regressor": (j, n),
            "weights": (n, j),
            "kintree_table": (2, j),
        }
        if self.v_template.ndim != 2 or self.v_template.shape[1] != 3:
            _bad("v_template", "N x 3", self.v_template)
        for name, shape in expected.items():
            value = getattr(self, name)
            if not isinstance(value, np.ndarray) or value.shape != shape:
                _bad(name, " x ".join(map(str, shape)), value)
            if name != "kintree_table" and not np.issubdtype(value.dtype, np.floating):
                raise JokerError(f"head model field '{name}' has dtype {value.dtype}, expected float",
                                 "re-export the model with float arrays")
            if name != "kintree_table" and not np.isfinite(value).all():
                raise JokerError(f"head model field '{name}' contains NaN or inf",
                                 "re-export the model; the file is damaged")
        if j != len(JOINT_NAMES):
            raise JokerError(f"head model has {j} joints, expected {len(JOINT_NAMES)} ({', '.join(JOINT_NAMES)})",
                             "use a FLAME-layout model")
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or not np.issubdtype(self.faces.dtype, np.integer):
            _bad("f", "F x 3 integer", self.faces)
        if self.faces.size and (self.faces.min() < 0 or self.faces.max() >= n):
            raise JokerError(f"head model field 'f' indexes vertices outside 0..{n - 1}",
                             "re-export the model; faces and vertices do not belong together")
        if self.expression_names and len(self.expression_names) != self.n_expr:
            raise JokerError(f"{len(self.expression_names)} expression names for {self.n_expr} components",
                             "name every expression component or none")
        if (self.uv_coords is None) != (self.uv_faces is None):
            raise JokerError("head model has only one of uv_coords / uv_faces", "give both or neither")
        if self.uv_faces is not None and self.uv_faces.shape != self.faces.shape:
            _bad("uv_faces", f"{self.faces.shape[0]} x 3", self.uv_faces)
        if self.face_region is not None and self.face_region.shape != (n,):
            _bad("face_region", f"{n} booleans", self.face_region)
        for label, index in self.landmarks.items():
            if not 0 <= int(index) < n:
                raise JokerError(f"landmark '{label}' points at vertex {index}, outside 0..{n - 1}",
                                 "fix the landmark table")
        return self


def _bad(name: str, expected: str, value) -> None:
    got = getattr(value, "shape", type(value).__name__)
    raise JokerError(f"head model field '{name}' has shape {got}, expected {expected}",
                     "load an official FLAME 2020/2023 file or a Joker .npz head model")


def load_model(path: str | os.PathLike | None) -> HeadModel:
    """The head model file at `path` (official FLAME .pkl or Joker .npz), or the built-in
    demo head when None. The one loader every command and job uses. The last model read
    is kept while its file is unchanged (size and mtime): a command that checks its
    arguments against the model and then runs the job reads the file once. Treat the
    model as read-only."""
    if path is None:
        from .demo_head import load_demo_head
        key, load = ("demo head",), load_demo_head
    else:
        from .flame_format import load_head_model
        key, load = _file_key(path), lambda: load_head_model(path)
    if key is None or _last_loaded.get("key") != key:
        _last_loaded.clear()
        _last_loaded.update(model=load(), key=key)
    return _last_loaded["model"]


_last_loaded: dict = {}


def _file_key(path: str | os.PathLike) -> tuple | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None  # the loader says what is wrong
    return os.path.realpath(path), stat.st_size, stat.st_mtime_ns

"""The parameters that pose a FLAME-layout head: one head's identity, expression and pose.

Field names are the job protocol's and the add-on's (`to_dict` / `from_dict` is their JSON
form). Poses are axis-angle radians in the FLAME frame; translation is in metres. Shorter
identity/expression vectors mean the remaining components are zero.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping, Protocol

import numpy as np

from .errors import JokerError

POSE_FIELDS = ("global_pose", "neck_pose", "jaw_pose", "eye_left_pose", "eye_right_pose")  # joint order


class ComponentCounts(Protocol):
    """What limits a parameter vector: a HeadModel or a prepared rig."""

    n_shape: int
    n_expr: int


# Far beyond any face (FLAME's coefficients are in standard deviations, poses in radians),
# and small enough that the rig's arithmetic stays finite.
LIMITS = {"shape": 100.0, "expression": 100.0, "translation": 100.0}
POSE_LIMIT = 4 * np.pi


def _vector(name: str, value: Any) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise JokerError(f"rig parameter '{name}' is not a list of numbers",
                         f"give '{name}' as a flat list of numbers") from None
    if array.ndim != 1:
        raise JokerError(f"rig parameter '{name}' has shape {array.shape}, expected a flat list",
                         f"give '{name}' as a flat list of numbers")
    if not np.isfinite(array).all():
        raise JokerError(f"rig parameter '{name}' contains NaN or inf", f"give finite numbers for '{name}'")
    limit = LIMITS.get(name, POSE_LIMIT)
    if array.size and np.abs(array).max() > limit:
        raise JokerError(f"rig parameter '{name}' has a value out of [-{limit:g}, {limit:g}]",
                         f"give '{name}' values within [-{limit:g}, {limit:g}]")
    return array


def check_length(name: str, length: int, limit: int) -> None:
    """Refuse a coefficient vector longer than the model has components."""
    if length > limit:
        raise JokerError(f"rig parameter '{name}' has {length} values but the model supports at most {limit}",
                         f"send at most {limit} '{name}' coefficients")


def _zeros3() -> np.ndarray:
    return np.zeros(3)


@dataclass(eq=False)
class RigParams:
    """One head's FLAME parameters; every field is checked and stored as float64 on creation."""

    shape: np.ndarray = field(default_factory=lambda: np.zeros(0))
    expression: np.ndarray = field(default_factory=lambda: np.zeros(0))
    global_pose: np.ndarray = field(default_factory=_zeros3)
    neck_pose: np.ndarray = field(default_factory=_zeros3)
    jaw_pose: np.ndarray = field(default_factory=_zeros3)
    eye_left_pose: np.ndarray = field(default_factory=_zeros3)
    eye_right_pose: np.ndarray = field(default_factory=_zeros3)
    translation: np.ndarray = field(default_factory=_zeros3)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = _vector(f.name, getattr(self, f.name))
            if f.name not in ("shape", "expression") and value.shape != (3,):
                meaning = "metres" if f.name == "translation" else "axis-angle radians"
                raise JokerError(f"rig parameter '{f.name}' has {value.size} values, expected 3 ({meaning})",
                                 f"give exactly 3 numbers for '{f.name}'")
            setattr(self, f.name, value)

    def validated(self, model: ComponentCounts) -> "RigParams":
        """A copy whose identity/expression vectors are zero-padded to the model's counts;
        refuses vectors longer than the model supports."""
        check_length("shape", self.shape.size, model.n_shape)
        check_length("expression", self.expression.size, model.n_expr)
        return replace(self,
                       shape=np.pad(self.shape, (0, model.n_shape - self.shape.size)),
                       expression=np.pad(self.expression, (0, model.n_expr - self.expression.size)))

    @property
    def rotations(self) -> np.ndarray:
        """J x 3 axis-angle per joint, in FLAME's joint order."""
        return np.stack([getattr(self, name) for name in POSE_FIELDS])

    def __eq__(self, other: object) -> bool:  # by value: a spec that crosses JSON and back is the same spec
        if not isinstance(other, RigParams):
            return NotImplemented
        return all(np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self))

    __hash__ = None  # mutable arrays

    def to_dict(self) -> dict[str, list[float]]:
        return {f.name: getattr(self, f.name).tolist() for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RigParams":
        """Missing fields are zero; unknown ones are refused by name."""
        if not isinstance(data, Mapping):
            raise JokerError(f"rig parameters are a {type(data).__name__}, expected a mapping of field to numbers",
                             "send an object such as {\"jaw_pose\": [0.3, 0, 0]}")
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise JokerError(f"unknown rig parameter '{unknown[0]}'", f"use only {', '.join(names)}")
        return cls(**data)

"""The cube a head lives in (world units: metres, FLAME frame). The distillation's field
maps it to [-1, 1]^3, and the mesher samples its density grid over the same cube, so one
type carries it from one to the other."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from joker_core.errors import JokerError


@dataclass(frozen=True)
class Box:
    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    half_size: float = 0.16

    def __post_init__(self):
        center = np.asarray(self.center, dtype=np.float64)
        if center.shape != (3,) or not np.isfinite(center).all():
            raise JokerError(f"bounding box centre {self.center} is not a finite 3D point",
                             "give the head volume's centre as (x, y, z) in metres")
        if not (np.isfinite(self.half_size) and self.half_size > 0):
            raise JokerError(f"bounding box half size {self.half_size} is not a positive number",
                             "give the head volume a positive size in metres")

    @classmethod
    def around(cls, center, radius: float, margin: float = 1.05) -> "Box":
        """The cube around a bounding sphere, `margin` times its radius."""
        return cls(center=tuple(float(c) for c in center), half_size=float(radius) * margin)

    @property
    def minimum(self) -> np.ndarray:
        return np.asarray(self.center, dtype=np.float64) - self.half_size

    @property
    def maximum(self) -> np.ndarray:
        return np.asarray(self.center, dtype=np.float64) + self.half_size

    @property
    def size(self) -> float:
        return 2.0 * self.half_size

    def to_unit(self, points):
        """World points (torch) -> box units ([-1, 1] inside the box)."""
        return (points - points.new_tensor(self.center)) / self.half_size

"""Smooth displacement fields, the building blocks of every demo-head blendshape.

A blendshape is a function of the rest geometry giving each vertex an offset in metres
for one unit of its coefficient. Fields here are gaussian-weighted moves of named regions;
`blendshape` applies one to the whole head with the rules every blendshape shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .anatomy import mirror
from .geometry import Geometry

LEFT, RIGHT = 1.0, -1.0


@dataclass(frozen=True)
class Rest:
    """What a field may look at: rest positions and each vertex's lower-face weight."""

    points: np.ndarray   # N x 3
    lower: np.ndarray    # N, 1 on the jaw side of the lips, 0 above

    @property
    def upper(self) -> np.ndarray:
        return 1.0 - self.lower


Field = Callable[[Rest], np.ndarray]  # Rest -> N x 3 offsets


def bump(points: np.ndarray, centre, sigma) -> np.ndarray:
    """Gaussian weight, 1 at centre, per-axis widths sigma (metres)."""
    scaled = (points - np.asarray(centre)) / np.asarray(sigma, dtype=float)
    return np.exp(-0.5 * np.einsum("ij,ij->i", scaled, scaled))


def move(points: np.ndarray, centre, sigma, offset) -> np.ndarray:
    """Offset a gaussian region: N x 3."""
    return bump(points, centre, sigma)[:, None] * np.asarray(offset, dtype=float)


def move_sides(points: np.ndarray, left_centre, sigma, left_offset, sides=(LEFT, RIGHT)) -> np.ndarray:
    """`move` on the left feature and, mirrored, on the right one (or on `sides` only)."""
    total = np.zeros_like(points)
    for side in sides:
        centre, offset = (left_centre, left_offset) if side == LEFT else (mirror(left_centre), mirror(left_offset))
        total += move(points, centre, sigma, offset)
    return total


def scale_about(points: np.ndarray, centre, sigma, amount: float) -> np.ndarray:
    """Grow a gaussian region about its centre by `amount` (0.1: ten percent)."""
    return bump(points, centre, sigma)[:, None] * (points - np.asarray(centre)) * amount


def blendshape(geometry: Geometry, rest: Rest, field: Field, rigid: Sequence[np.ndarray] = (),
               still: Sequence[np.ndarray] = ()) -> np.ndarray:
    """N x 3 offsets of `field` over the head.

    Each vertex group in `rigid` moves as a whole by the field at its centroid, so it keeps
    its shape; groups in `still` do not move; the mouth pouch follows the lips it hangs
    from, fading into the field itself toward the throat, so lips and cavity never tear.
    """
    offsets = field(rest)
    for ids in still:
        offsets[ids] = 0.0
    for ids in rigid:
        centre = Rest(points=rest.points[ids].mean(axis=0, keepdims=True), lower=rest.lower[ids][:1])
        offsets[ids] = field(centre)[0]
    pouch = geometry.parts["pouch"]
    on_loop = geometry.pouch_loop >= 0
    depth = geometry.pouch_depth[:, None]
    from_lips = np.zeros((len(pouch), 3))
    from_lips[on_loop] = offsets[geometry.pouch_loop[on_loop]]
    offsets[pouch] = (1 - depth) * from_lips + depth * offsets[pouch]
    return offsets

"""Identity components of the demo head: one named, smooth change of proportions each.

One unit is a clearly visible but plausible difference (about two standard deviations of
adult variation); negative coefficients give the opposite. Eyeballs and tongue move rigidly.
"""

from __future__ import annotations

import numpy as np

from . import anatomy as A
from .fields import Rest, bump, move, move_sides, scale_about
from .rig import smoothstep


def _axis(points: np.ndarray, values: np.ndarray, axis: int) -> np.ndarray:
    offsets = np.zeros_like(points)
    offsets[:, axis] = values
    return offsets


def head_width(r: Rest) -> np.ndarray:
    return _axis(r.points, 0.06 * r.points[:, 0], 0)


def skull_height(r: Rest) -> np.ndarray:
    return _axis(r.points, 0.10 * np.maximum(r.points[:, 1] - 0.01, 0), 1)


def head_length(r: Rest) -> np.ndarray:
    return _axis(r.points, 0.08 * np.minimum(r.points[:, 2], 0), 2)


def face_length(r: Rest) -> np.ndarray:
    """The face below the nose grows downward; the neck moves down with it."""
    return _axis(r.points, -0.12 * np.clip(-r.points[:, 1], 0, 0.10), 1)


def jaw_width(r: Rest) -> np.ndarray:
    band = bump(r.points[:, 1:2], [-0.07], [0.025]) * smoothstep(r.points[:, 2], -0.04, 0.0)
    return _axis(r.points, 0.14 * r.points[:, 0] * band, 0)


def nose_size(r: Rest) -> np.ndarray:
    return scale_about(r.points, A.NOSE_TIP - (0, -0.01, 0.02), (0.018, 0.025, 0.025), 0.22)


def nose_projection(r: Rest) -> np.ndarray:
    return move(r.points, A.NOSE_TIP, (0.010, 0.016, 0.016), (0.0, -0.002, 0.007))


def chin_projection(r: Rest) -> np.ndarray:
    return move(r.points, A.CHIN, (0.018, 0.014, 0.025), (0.0, -0.003, 0.007))


def cheekbones(r: Rest) -> np.ndarray:
    return move_sides(r.points, A.CHEEK_LEFT, (0.015, 0.013, 0.018), (0.006, 0.002, 0.005))


def eye_spacing(r: Rest) -> np.ndarray:
    return move_sides(r.points, A.EYE_LEFT + (0, 0, 0.06), (0.014, 0.012, 0.04), (0.004, 0.0, 0.0))


def brow_ridge(r: Rest) -> np.ndarray:
    return move(r.points, (0.0, A.BROW_Y, 0.07), (0.035, 0.009, 0.03), (0.0, 0.0, 0.005))


def lip_fullness(r: Rest) -> np.ndarray:
    weight = bump(r.points, A.MOUTH_CENTRE, (0.02, 0.009, 0.015))
    vertical = 0.0025 * (r.upper - r.lower)
    return weight[:, None] * np.stack([np.zeros_like(vertical), vertical, np.full_like(vertical, 0.003)], 1)


def ear_size(r: Rest) -> np.ndarray:
    return sum(scale_about(r.points, ear, (0.012, 0.025, 0.018), 0.25) for ear in (A.EAR_LEFT, A.mirror(A.EAR_LEFT)))


def neck_thickness(r: Rest) -> np.ndarray:
    below = smoothstep(r.points[:, 1], -0.08, -0.12)[:, None]
    return 0.12 * below * (r.points - (0.0, 0.0, -0.018)) * (1.0, 0.0, 1.0)


IDENTITY_COMPONENTS = (head_width, skull_height, head_length, face_length, jaw_width, nose_size,
                       nose_projection, chin_projection, cheekbones, eye_spacing, brow_ridge,
                       lip_fullness, ear_size, neck_thickness)
IDENTITY_NAMES = tuple(component.__name__ for component in IDENTITY_COMPONENTS)

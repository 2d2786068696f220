"""Expression blendshapes of the demo head, each a named facial action at full strength
for coefficient 1 (FACS-like; the presets mix them).

Offsets are in metres in the FLAME frame. Mouth actions use the lower-face weight to keep
the upper and lower lip apart where they touch; eyeballs never move with an expression, the
skin of the eye openings only with the lid actions (blinks, eyes_wide) and the tongue only
with tongue_out.
"""

from __future__ import annotations

import numpy as np

from . import anatomy as A
from .fields import LEFT, RIGHT, Rest, bump, move, move_sides
from .geometry import Geometry

CORNER = A.MOUTH_CENTRE + (A.MOUTH_HALF_WIDTH, 0.0, -0.008)
CORNER_SIGMA = (0.011, 0.010, 0.012)
LIPS_SIGMA = (0.022, 0.010, 0.016)
INNER_BROW = np.array([0.014, A.BROW_Y - 0.004, 0.085])


def _smile(r: Rest, sides) -> np.ndarray:
    corners = move_sides(r.points, CORNER, CORNER_SIGMA, (0.005, 0.008, -0.004), sides)
    cheeks = move_sides(r.points, A.CHEEK_LEFT + (0, -0.008, 0.01), (0.016, 0.014, 0.02), (0.0, 0.004, 0.002), sides)
    return corners + cheeks


def smile(r: Rest) -> np.ndarray:
    return _smile(r, (LEFT, RIGHT))


def smile_left(r: Rest) -> np.ndarray:
    return _smile(r, (LEFT,))


def smile_right(r: Rest) -> np.ndarray:
    return _smile(r, (RIGHT,))


def frown(r: Rest) -> np.ndarray:
    corners = move_sides(r.points, CORNER + (0, -0.004, 0), CORNER_SIGMA, (0.001, -0.007, -0.001))
    chin_raise = move(r.points, A.CHIN + (0, 0.012, 0), (0.016, 0.012, 0.02), (0.0, 0.003, 0.002))
    return corners + chin_raise * r.lower[:, None]


def brow_raise(r: Rest) -> np.ndarray:
    brows = move(r.points, (0.0, A.BROW_Y + 0.004, 0.07), (0.05, 0.010, 0.04), (0.0, 0.008, 0.0))
    forehead = move(r.points, (0.0, A.BROW_Y + 0.03, 0.06), (0.05, 0.02, 0.05), (0.0, 0.003, 0.0))
    return brows + forehead


def brow_furrow(r: Rest) -> np.ndarray:
    return move_sides(r.points, INNER_BROW, (0.010, 0.009, 0.02), (-0.004, -0.004, 0.002))


def _eyes_wide(geometry: Geometry) -> np.ndarray:
    """Upper lids lift and lower lids drop: the skin of each opening slides along its
    eyeball (a small turn about the eye's x axis, staying under the eyeball's surface)
    while the lid skin around it follows."""
    points = geometry.vertices
    offsets = np.zeros_like(points)
    skin = geometry.parts["skin"]
    offsets[skin] = (move_sides(points[skin], A.EYE_LEFT + (0.001, 0.009, 0.071), (0.011, 0.004, 0.01),
                                (0.0, 0.0035, -0.0015))
                     + move_sides(points[skin], A.EYE_LEFT + (0.001, -0.004, 0.069), (0.011, 0.003, 0.01),
                                  (0.0, -0.0015, 0.0)))
    for window, centre in zip(geometry.eye_windows, geometry.eye_centres):
        local = points[window] - centre
        turn = 0.28 * np.clip(local[:, 1] / 0.005, -0.4, 1.0)  # radians: up at the top, down at the bottom
        offsets[window] = turn[:, None] * np.stack([np.zeros(len(window)), local[:, 2], -local[:, 1]], axis=1)
    return offsets


def _blink(geometry: Geometry, side: float) -> np.ndarray:
    """Window vertices of one eye move onto the closed lid."""
    offsets = np.zeros_like(geometry.vertices)
    skin = geometry.parts["skin"]
    lid_offsets = geometry.closed_lids - geometry.vertices[skin]
    this_side = np.sign(geometry.vertices[skin, 0]) == side
    offsets[skin[this_side]] = lid_offsets[this_side]
    return offsets


def cheek_puff(r: Rest) -> np.ndarray:
    centre = np.array([0.038, A.MOUTH_CENTRE[1] + 0.004, 0.055])
    weight = sum(bump(r.points, c, (0.018, 0.018, 0.02)) for c in (centre, A.mirror(centre)))
    outward = r.points - (0.0, centre[1], 0.03)
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    return 0.011 * weight[:, None] * outward


def lip_pucker(r: Rest) -> np.ndarray:
    forward = move(r.points, A.MOUTH_CENTRE, LIPS_SIGMA, (0.0, 0.0, 0.014))
    inward = move_sides(r.points, CORNER, CORNER_SIGMA, (-0.011, 0.0, 0.004))
    return forward + inward


def mouth_stretch(r: Rest) -> np.ndarray:
    corners = move_sides(r.points, CORNER, CORNER_SIGMA, (0.010, -0.003, -0.003))
    flatten = move(r.points, A.MOUTH_CENTRE, LIPS_SIGMA, (0.0, 0.0, -0.002))
    return corners + flatten


def nose_wrinkle(r: Rest) -> np.ndarray:
    wings = move_sides(r.points, (0.014, -0.008, 0.095), (0.008, 0.010, 0.012), (-0.0015, 0.005, 0.0))
    bridge = move(r.points, (0.0, 0.02, 0.095), (0.01, 0.012, 0.012), (0.0, -0.002, 0.001))
    lip = move(r.points, A.MOUTH_CENTRE + (0, 0.012, 0), (0.018, 0.008, 0.015), (0.0, 0.003, 0.0))
    return wings + bridge + lip * r.upper[:, None]


def lip_funnel(r: Rest) -> np.ndarray:
    weight = bump(r.points, A.MOUTH_CENTRE, LIPS_SIGMA)[:, None]
    part = 0.004 * (r.upper - r.lower)[:, None] * (0.0, 1.0, 0.0)
    forward = np.array([0.0, 0.0, 0.008])
    inward = move_sides(r.points, CORNER, CORNER_SIGMA, (-0.005, 0.0, 0.0))
    return weight * (part + forward) + inward


def lower_lip_down(r: Rest) -> np.ndarray:
    return move(r.points, A.MOUTH_CENTRE + (0, -0.006, 0), (0.018, 0.010, 0.015), (0.0, -0.007, 0.002)) * r.lower[:, None]


def upper_lip_raise(r: Rest) -> np.ndarray:
    return move(r.points, A.MOUTH_CENTRE + (0, 0.006, 0), (0.018, 0.010, 0.015), (0.0, 0.006, 0.001)) * r.upper[:, None]


def _tongue_out(geometry: Geometry) -> np.ndarray:
    """The tongue slides forward over the lower lip, stretching and drooping at the tip.
    (Meant with the jaw open: with the mouth shut it would pass through the upper lip.)"""
    offsets = np.zeros_like(geometry.vertices)
    ids = geometry.parts["tongue"]
    local = geometry.vertices[ids] - geometry.tongue_centre
    reach = np.clip(local[:, 2] / 0.021 * 0.5 + 0.5, 0, 1)[:, None]  # 0 at the root, 1 at the tip
    offsets[ids] = np.array([0.0, 0.003, 0.030]) + reach * np.array([0.0, -0.005, 0.016])
    offsets[ids, 0] -= 0.15 * local[:, 0] * reach[:, 0]
    return offsets


FIELD_EXPRESSIONS = (smile, smile_left, smile_right, frown, brow_raise, brow_furrow, cheek_puff, lip_pucker,
                     mouth_stretch, nose_wrinkle, lip_funnel, lower_lip_down, upper_lip_raise)
SPECIAL_EXPRESSIONS = {
    "blink_left": lambda geometry: _blink(geometry, LEFT),
    "blink_right": lambda geometry: _blink(geometry, RIGHT),
    "eyes_wide": _eyes_wide,
    "tongue_out": _tongue_out,
}
EXPRESSION_NAMES = tuple(f.__name__ for f in FIELD_EXPRESSIONS) + tuple(SPECIAL_EXPRESSIONS)

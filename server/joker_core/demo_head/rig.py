"""Skinning weights and the joint regressor of the demo head (FLAME's five joints).

The jaw weight ("lowerness") is a step across the lip slit between the mouth corners and
softens with distance from them over the cheeks, so the mouth opens cleanly while the
cheeks stretch smoothly; it fades out toward the ears and down the throat. The lower neck
follows the global joint, the rest of the head the neck joint.
"""

from __future__ import annotations

import numpy as np

from . import anatomy as A
from .geometry import Geometry
from .skin import N_COLS, N_ROWS

GLOBAL, NECK, JAW, EYE_LEFT, EYE_RIGHT = range(5)


def smoothstep(x: np.ndarray, edge0: float, edge1: float) -> np.ndarray:
    """0 at edge0, 1 at edge1 (either order), smooth in between."""
    t = np.clip((np.asarray(x) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _skin_angles(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """Grid polar angle and azimuth of every skin vertex; lip copies sit a hair below the slit."""
    grid = geometry.grid
    polar = np.concatenate([[0.0], np.repeat(grid.polar, N_COLS), [np.pi]])
    azimuth = np.concatenate([[0.0], np.tile(grid.azimuth, N_ROWS), [0.0]])
    polar[grid.slit_originals()] -= 1e-6
    copies = np.full(len(grid.slit_cols), grid.polar[grid.slit_row] + 1e-6)
    return np.concatenate([polar, copies]), np.concatenate([azimuth, grid.azimuth[grid.slit_cols]])


def lowerness(geometry: Geometry) -> np.ndarray:
    """Per vertex, how much it belongs to the lower face (1: moves with the jaw)."""
    polar, azimuth = _skin_angles(geometry)
    beyond_corner = np.maximum(np.abs(azimuth) - A.MOUTH_CORNER_AZIMUTH, 0.0)
    spread = 1e-9 + 0.35 * beyond_corner
    lip_line = geometry.grid.polar[geometry.grid.slit_row]
    skin = 1 / (1 + np.exp(-np.clip((polar - lip_line) / spread, -60, 60)))
    skin *= smoothstep(np.abs(azimuth), 1.75, 1.25)
    front_height = geometry.vertices[: len(skin), 1] + 0.5 * geometry.vertices[: len(skin), 2]
    skin *= smoothstep(front_height, -0.13, -0.085)  # fades down the throat, not on the chin

    lower = np.zeros(len(geometry.vertices))
    lower[: len(skin)] = skin
    pouch = geometry.parts["pouch"]
    on_loop = geometry.pouch_loop >= 0
    lower[pouch[on_loop]] = skin[geometry.pouch_loop[on_loop]]
    lower[pouch[~on_loop]] = 0.5
    lower[geometry.parts["tongue"]] = 1.0
    return lower


def skinning_weights(geometry: Geometry, lower: np.ndarray) -> np.ndarray:
    weights = np.zeros((len(geometry.vertices), 5))
    neck_base = smoothstep(geometry.vertices[:, 1], -0.115, -0.16)
    neck_base[geometry.parts["pouch"]] = 0.0
    weights[:, GLOBAL] = neck_base
    weights[:, JAW] = (1 - neck_base) * lower
    weights[:, NECK] = (1 - neck_base) * (1 - lower)
    for joint, part in ((EYE_LEFT, "eyeball_left"), (EYE_RIGHT, "eyeball_right")):
        weights[geometry.parts[part]] = np.eye(5)[joint]
    return weights


def _affine_weights(points: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The smallest weights, summing to one, whose combination of `points` is `target`."""
    system = np.vstack([points.T, np.ones(len(points))])
    return np.linalg.pinv(system) @ np.append(target, 1.0)


def joint_regressor(geometry: Geometry) -> np.ndarray:
    """5 x N: eyes are their eyeball's centroid; the others affine combinations of nearby skin,
    chosen away from the face so expressions do not move them."""
    vertices = geometry.vertices
    skin = geometry.parts["skin"]
    behind_face = skin[vertices[skin, 2] < 0.02]
    regressor = np.zeros((5, len(vertices)))
    for joint, name in ((GLOBAL, "global"), (NECK, "neck")):
        target = A.JOINT_TARGETS[name]
        band = behind_face[np.abs(vertices[behind_face, 1] - target[1]) < 0.012]
        regressor[joint, band] = _affine_weights(vertices[band], target)
    tmj = np.abs(np.abs(vertices[behind_face, 0]) - 0.06) + np.abs(vertices[behind_face, 1] - A.JOINT_TARGETS["jaw"][1])
    near_tmj = behind_face[tmj < 0.025]
    regressor[JAW, near_tmj] = _affine_weights(vertices[near_tmj], A.JOINT_TARGETS["jaw"])
    for joint, part in ((EYE_LEFT, "eyeball_left"), (EYE_RIGHT, "eyeball_right")):
        ids = geometry.parts[part]
        regressor[joint, ids] = 1.0 / len(ids)
    return regressor

"""The demo head's rest geometry: skin, mouth pouch, eyeballs and tongue as one mesh.

Every part is closed: the skin plus the pouch that seals its lip slit from inside (the
mouth cavity, seen when the jaw opens) form one surface; each eyeball and the tongue are
separate closed ellipsoids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import anatomy as A
from . import sculpt
from .skin import SkinGrid, skin_faces, skin_grid
from .topology import boundary_loop, closed_grid_faces, latlong_sphere, pouch_behind

POUCH_RINGS = 6
EYE_ROWS, EYE_COLS = 13, 24
TONGUE_ROWS, TONGUE_COLS = 9, 16
PALATE_HEIGHT, FLOOR_DEPTH = 0.011, 0.014
TONGUE_RADII = (0.0125, 0.005, 0.021)


@dataclass(frozen=True)
class Geometry:
    vertices: np.ndarray          # N x 3 rest positions
    faces: np.ndarray             # F x 3
    parts: dict[str, np.ndarray]  # part name -> vertex ids
    face_parts: dict[str, np.ndarray]  # part name -> face ids
    grid: SkinGrid
    eye_centres: np.ndarray       # 2 x 3: left, right
    eye_windows: tuple[np.ndarray, np.ndarray]  # skin vertices inside each eye's opening: left, right
    tongue_centre: np.ndarray
    closed_lids: np.ndarray       # skin vertex positions with the lids shut (same ids as skin)
    pouch_loop: np.ndarray        # lip-loop vertex per pouch vertex (the cap: -1)
    pouch_depth: np.ndarray       # 0 at the lips .. 1 at the cap, per pouch vertex


def _eye_centres() -> np.ndarray:
    centres = []
    for side in (1.0, -1.0):
        start = np.array([side * A.EYE_LEFT[0], A.EYE_LEFT[1], 0.0])
        lid_z = sculpt.first_crossing(sculpt.head_closed_eyes, np.array([[0.0, 0.0, 1.0]]), origin=start)[0]
        centres.append(sculpt.eye_centre(side, lid_z))
    return np.array(centres)


def _pouch_positions(lips: np.ndarray, loop_sides: np.ndarray, mouth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring positions behind the lip loop: a lens-shaped cavity that narrows toward the throat."""
    depth = np.arange(1, POUCH_RINGS + 1)[:, None] / POUCH_RINGS
    across = np.clip(lips[:, 0] / A.MOUTH_HALF_WIDTH, -1, 1)[None, :]
    height = np.where(loop_sides > 0, PALATE_HEIGHT, -FLOOR_DEPTH)[None, :] * (loop_sides != 0)
    rings = np.empty((POUCH_RINGS, len(lips), 3))
    rings[..., 0] = lips[None, :, 0] * (1 - 0.3 * depth)
    rings[..., 1] = lips[None, :, 1] + height * np.sqrt(1 - across**2) * np.sin(np.pi / 2 * np.minimum(1, 1.5 * depth))
    rings[..., 2] = lips[None, :, 2] - A.MOUTH_DEPTH * depth
    cap = np.array([0.0, mouth[1] - 0.001, mouth[2] - A.MOUTH_DEPTH - 0.006])
    return rings.reshape(-1, 3), cap


def _window_under_eyeball(rim_points: np.ndarray, lid_points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Rest positions for the skin inside one eye's opening: just under the eyeball's surface,
    shallow at the top of the opening and deeper toward the bottom.

    Blinking moves each of these vertices in a straight line out to the closed lid, so
    a vertex crosses the eyeball's surface at a weight set by its depth: the lid emerges
    at the top first and sweeps down, as an upper eyelid does, instead of popping out
    everywhere at once near full weight.
    """
    outward = lid_points - centre
    outward /= np.linalg.norm(outward, axis=1, keepdims=True)
    y = rim_points[:, 1]
    from_top = (y.max() - y) / max(np.ptp(y), 1e-9)
    depth = 0.0008 + 0.0105 * from_top**1.2
    return centre + (A.EYE_RADIUS - depth)[:, None] * outward


def _skin_surfaces(grid: SkinGrid, eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Grid vertex positions with the eyes open and with the lids shut, and the vertices
    of each eye's opening (left, right)."""
    directions, origin = grid.directions(), A.SKIN_ORIGIN
    open_skin = origin + directions * sculpt.first_crossing(
        lambda p: sculpt.head_open_eyes(p, list(eyes)), directions, origin)[:, None]
    to_eyes = eyes - origin
    to_eyes /= np.linalg.norm(to_eyes, axis=1, keepdims=True)
    near_eyes = (directions @ to_eyes.T).max(axis=1) > np.cos(0.3)
    closed_skin = open_skin.copy()
    closed_skin[near_eyes] = origin + directions[near_eyes] * sculpt.first_crossing(
        sculpt.head_closed_eyes, directions[near_eyes], origin)[:, None]
    in_window = np.linalg.norm(closed_skin - open_skin, axis=1) > 1e-4
    windows = []
    for side, centre in zip((1.0, -1.0), eyes):
        ids = np.nonzero(in_window & (np.sign(open_skin[:, 0]) == side))[0]
        open_skin[ids] = _window_under_eyeball(open_skin[ids], closed_skin[ids], centre)
        windows.append(ids)
    return open_skin, closed_skin, windows


def build_geometry() -> Geometry:
    grid = skin_grid()
    eyes = _eye_centres()
    open_skin, closed_skin, windows = _skin_surfaces(grid, eyes)
    copies = grid.lower_lip_copies()
    skin_vertices = np.concatenate([open_skin, open_skin[grid.slit_originals()]])
    closed_lids = np.concatenate([closed_skin, closed_skin[grid.slit_originals()]])
    faces = [skin_faces(grid)]
    corners = grid.vertex(grid.slit_row, np.array(grid.corner_cols))
    loop = boundary_loop(faces[0], np.concatenate([grid.slit_originals(), copies, corners]))
    sides = np.where(np.isin(loop, copies), -1, np.where(np.isin(loop, grid.slit_originals()), 1, 0))
    pouch = pouch_behind(loop, POUCH_RINGS, len(skin_vertices))
    ring_points, cap = _pouch_positions(skin_vertices[loop], sides, A.MOUTH_CENTRE)
    faces.append(pouch.faces)
    vertices = [skin_vertices, ring_points, cap[None]]
    pouch_ids = np.arange(len(skin_vertices), pouch.cap + 1)

    parts = {"skin": np.arange(len(skin_vertices)), "pouch": pouch_ids}
    next_id = pouch.cap + 1
    eye_names = ("eyeball_left", "eyeball_right")
    tongue_centre = np.array([0.0, A.MOUTH_CENTRE[1] - 0.0065, A.MOUTH_CENTRE[2] - 0.030])
    closed_parts = [(name, latlong_sphere(c, (A.EYE_RADIUS,) * 3, EYE_ROWS, EYE_COLS), EYE_ROWS, EYE_COLS)
                    for name, c in zip(eye_names, eyes)]
    closed_parts.append(("tongue", latlong_sphere(tongue_centre, TONGUE_RADII, TONGUE_ROWS, TONGUE_COLS),
                         TONGUE_ROWS, TONGUE_COLS))
    for name, points, rows, cols in closed_parts:
        faces.append(closed_grid_faces(rows, cols, offset=next_id))
        vertices.append(points)
        parts[name] = next_id + np.arange(len(points))
        next_id += len(points)

    all_faces = np.concatenate(faces)
    face_parts, start = {}, 0
    for name, block in zip(["skin", "pouch", *eye_names, "tongue"], faces):
        face_parts[name] = start + np.arange(len(block))
        start += len(block)
    pouch_loop = np.concatenate([np.repeat(loop[None], POUCH_RINGS, 0).ravel(), [-1]])
    pouch_depth = np.concatenate([np.repeat(np.arange(1, POUCH_RINGS + 1) / POUCH_RINGS, len(loop)), [1.0]])
    return Geometry(vertices=np.concatenate(vertices), faces=all_faces, parts=parts, face_parts=face_parts,
                    grid=grid, eye_centres=eyes, eye_windows=tuple(windows), tongue_centre=tongue_centre,
                    closed_lids=closed_lids, pouch_loop=pouch_loop, pouch_depth=pouch_depth)

"""The demo head's UV atlas: the skin unrolled by its grid, small parts in a strip below.

The skin's grid is denser over the face, and unrolling it by grid index gives the face
proportionally more texels; the back-of-head seam and the poles sit where nobody looks.
"""

from __future__ import annotations

import numpy as np

from .geometry import EYE_COLS, EYE_ROWS, POUCH_RINGS, TONGUE_COLS, TONGUE_ROWS, Geometry
from .skin import N_COLS, N_ROWS
from .topology import grid_uv, pouch_uv

# (u0, v0, u1, v1) boxes; origin bottom-left.
SKIN_BOX = (0.0, 0.22, 1.0, 1.0)
POUCH_BOX = (0.0, 0.0, 0.40, 0.20)
EYE_BOXES = ((0.42, 0.0, 0.62, 0.20), (0.64, 0.0, 0.84, 0.20))
TONGUE_BOX = (0.86, 0.0, 1.0, 0.20)


def uv_layout(geometry: Geometry) -> tuple[np.ndarray, np.ndarray]:
    """(T x 2 coordinates, F x 3 UV faces), faces in the mesh's part order."""
    n_loop = (geometry.pouch_loop >= 0).sum() // POUCH_RINGS
    pieces = [grid_uv(N_ROWS, N_COLS, SKIN_BOX), pouch_uv(n_loop, POUCH_RINGS, POUCH_BOX)]
    pieces += [grid_uv(EYE_ROWS, EYE_COLS, box) for box in EYE_BOXES]
    pieces.append(grid_uv(TONGUE_ROWS, TONGUE_COLS, TONGUE_BOX))
    coords, faces, offset = [], [], 0
    for piece_coords, piece_faces in pieces:
        coords.append(piece_coords)
        faces.append(piece_faces + offset)
        offset += len(piece_coords)
    return np.concatenate(coords), np.concatenate(faces)

"""The skin: a latitude-longitude grid around anatomy.SKIN_ORIGIN, denser over the face, cut open
along the lip line.

Rows run from the crown (polar angle 0) to the neck cap (polar angle pi); columns run
around y with azimuth 0 at the face. One row passes exactly through the lip line; between
the mouth corners its vertices are doubled (upper lip keeps the originals, the lower lip
gets copies), which turns the lip line into the one hole the mouth pouch closes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import anatomy as A
from .topology import closed_grid_faces, unit_directions

N_ROWS = 60
N_COLS = 112
AZIMUTH_WARP = 0.55   # 0: even columns; larger packs more of them over the face
POLAR_WARP = 0.2      # packs rows around the face band, fewer at the crown and neck cap


@dataclass(frozen=True)
class SkinGrid:
    polar: np.ndarray         # N_ROWS polar angles
    azimuth: np.ndarray       # N_COLS azimuths, symmetric about 0
    slit_row: int
    slit_cols: np.ndarray     # columns strictly between the mouth corners
    corner_cols: tuple[int, int]  # (left, right) mouth corner columns

    @property
    def n_grid(self) -> int:
        return 2 + N_ROWS * N_COLS

    def vertex(self, row: int | np.ndarray, col: int | np.ndarray) -> np.ndarray:
        return 1 + np.asarray(row) * N_COLS + np.asarray(col) % N_COLS

    def directions(self) -> np.ndarray:
        ring = unit_directions(self.polar[:, None], self.azimuth[None, :]).reshape(-1, 3)
        return np.concatenate([[[0.0, 1.0, 0.0]], ring, [[0.0, -1.0, 0.0]]])

    def lower_lip_copies(self) -> np.ndarray:
        """Vertex ids of the lower-lip copies, one per slit column, after the grid."""
        return self.n_grid + np.arange(len(self.slit_cols))

    def slit_originals(self) -> np.ndarray:
        return self.vertex(self.slit_row, self.slit_cols)


def _polar_warp(t: np.ndarray) -> np.ndarray:
    """Even parameter -> polar angle; monotone while POLAR_WARP < 0.5."""
    return t + POLAR_WARP * np.sin(2 * t)


def _polar_rows() -> tuple[np.ndarray, int]:
    t = np.pi * np.arange(1, N_ROWS + 1) / (N_ROWS + 1)
    fine = np.linspace(0, np.pi, 4097)
    t_mouth = np.interp(A.MOUTH_POLAR, _polar_warp(fine), fine)
    row = int(np.argmin(np.abs(t - t_mouth)))
    # Stretch the parameter piecewise-linearly so that `row` lands exactly on the lip line.
    t = np.where(t <= t[row], t * t_mouth / t[row],
                 t_mouth + (t - t[row]) * (np.pi - t_mouth) / (np.pi - t[row]))
    return _polar_warp(t), row


def skin_grid() -> SkinGrid:
    s = -np.pi + 2 * np.pi * np.arange(N_COLS) / N_COLS
    azimuth = s - AZIMUTH_WARP * np.sin(s)
    polar, slit_row = _polar_rows()
    # Mouth corners: the columns whose azimuth best matches the corner at the lip line.
    left = int(np.argmin(np.abs(azimuth - A.MOUTH_CORNER_AZIMUTH)))
    right = int(np.argmin(np.abs(azimuth + A.MOUTH_CORNER_AZIMUTH)))
    return SkinGrid(polar=polar, azimuth=azimuth, slit_row=slit_row,
                    slit_cols=np.arange(right + 1, left), corner_cols=(left, right))


def skin_faces(grid: SkinGrid) -> np.ndarray:
    """Closed-grid faces with the faces under the slit re-pointed at the lower-lip copies."""
    faces = closed_grid_faces(N_ROWS, N_COLS)
    to_lower_lip = np.arange(grid.n_grid)
    to_lower_lip[grid.slit_originals()] = grid.lower_lip_copies()
    under_slit = np.isin(faces, grid.vertex(grid.slit_row + 1, np.arange(N_COLS))).any(axis=1)
    faces[under_slit] = to_lower_lip[faces[under_slit]]
    return faces

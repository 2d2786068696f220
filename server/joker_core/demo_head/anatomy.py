"""Where the demo head's features sit, in metres in the FLAME frame (+y up, face along +z).

One table that the sculpt, the rig, the blendshapes and the landmarks all read, so a
feature moved here moves everywhere. Left means the subject's left, which is +x.
"""

from __future__ import annotations

import numpy as np

# Skin rays start here, behind and level with the eyes, so they meet the upper lids,
# the lips and the nose steeply rather than grazing them.
SKIN_ORIGIN = np.array([0.0, 0.02, -0.035])

MOUTH_HALF_WIDTH = 0.025      # centre to corner, metres
MOUTH_CENTRE = np.array([0.0, -0.045, 0.095])
_MOUTH_RAY = MOUTH_CENTRE - SKIN_ORIGIN
# The mouth slit lies on the grid row through this polar angle (radians from +y).
MOUTH_POLAR = float(np.arctan2(_MOUTH_RAY[2], _MOUTH_RAY[1]))
MOUTH_CORNER_AZIMUTH = float(np.arcsin(MOUTH_HALF_WIDTH / _MOUTH_RAY[2]))
MOUTH_DEPTH = 0.045           # how far the mouth cavity reaches back from the lips

EYE_RADIUS = 0.0125
EYE_LEFT = np.array([0.031, 0.030, 0.0])   # x, y of the eye; z is set so the lids sit in front
LID_CLEARANCE = 0.0025        # closed lids rest this far in front of the eyeball

NOSE_TIP = np.array([0.0, -0.006, 0.118])
CHIN = np.array([0.0, -0.094, 0.078])
BROW_Y = 0.046
CHEEK_LEFT = np.array([0.044, -0.008, 0.060])
EAR_LEFT = np.array([0.074, 0.000, -0.012])

JOINT_TARGETS = {             # where the regressed rest joints should land (eyes: eyeball centres)
    "global": np.array([0.0, -0.130, -0.015]),
    "neck": np.array([0.0, -0.050, -0.020]),
    "jaw": np.array([0.0, -0.018, 0.000]),
}

NECK_BOTTOM_Y = -0.175


def mirror(point) -> np.ndarray:
    """The subject's right-hand twin of a left-hand point (or offset)."""
    return np.asarray(point, dtype=float) * (-1.0, 1.0, 1.0)

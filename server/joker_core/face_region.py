"""Which triangles the "face" normal-map mode keeps (design.md §2).

The official prior was trained on BFM09 face-region renders: forehead to chin, cheek to
cheek, no scalp, ears or neck. A model's own `face_region` is used when it has one (the
demo head does). FLAME files carry none, so the region falls back to a heuristic on the
neutral template, measured from the eyes so it scales with the head:

- E is the midpoint of the two eye joints, d the distance between them;
- a vertex is in the face if, in the frontal (x, y) plane, it lies inside the ellipse
  centred 0.65 d below E (about the nose base) with semi-axes 1.3 d across and 1.6 d up
  and down, so from 0.95 d above the eyes (forehead) to 2.25 d below them (chin);
- and it is no more than 0.6 d behind E along -z (this cuts the ears and the sides
  of the head; eyeballs and the front of the mouth stay in).

The numbers were fitted to the demo head's own region (IoU 0.93 on its vertices), with
the depth cut kept a little generous so FLAME's cheeks, set further back, stay in.
"""

from __future__ import annotations

import numpy as np

from joker_core.errors import JokerError
from joker_core.head_model import HeadModel

MODES = ("full", "face")

EYE_LEFT, EYE_RIGHT = 3, 4  # FLAME joint order
_ELLIPSE_DROP = 0.65         # ellipse centre below the eyes, in eye distances
_HALF_WIDTH, _HALF_HEIGHT = 1.3, 1.6
_MAX_BEHIND_EYES = 0.6


def face_region(model: HeadModel) -> np.ndarray:
    """N bool: the model's own face region, or the eye-based heuristic above."""
    if model.face_region is not None:
        return np.asarray(model.face_region, dtype=bool)
    return heuristic_face_region(model)


def heuristic_face_region(model: HeadModel) -> np.ndarray:
    joints = model.J_regressor @ model.v_template
    eye_left, eye_right = joints[EYE_LEFT], joints[EYE_RIGHT]
    eyes = 0.5 * (eye_left + eye_right)
    spacing = float(np.linalg.norm(eye_left - eye_right))
    if spacing <= 0.0:
        raise JokerError("the model's eye joints coincide, so its face region cannot be found",
                         "render with --mode full, or use a model whose eye joints are on the eyes")
    offset = (model.v_template - eyes) / spacing
    across = offset[:, 0] / _HALF_WIDTH
    up_down = (offset[:, 1] + _ELLIPSE_DROP) / _HALF_HEIGHT
    return (across ** 2 + up_down ** 2 <= 1.0) & (offset[:, 2] >= -_MAX_BEHIND_EYES)


def drawn_faces(model: HeadModel, mode: str) -> np.ndarray | None:
    """F bool of the triangles a mode shows, or None for every triangle ("full")."""
    if mode not in MODES:
        raise JokerError(f"unknown normal-map mode '{mode}'", f"use one of: {', '.join(MODES)}")
    if mode == "full":
        return None
    return face_region(model)[model.faces].all(axis=1)  # every corner inside the region

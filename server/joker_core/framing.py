"""Where to point the view rig so the whole head is in every view, centred.

The head's bounding sphere (centre of its bounding box, radius to the farthest vertex)
fits a camera cone of half-angle fov/2 at distance radius / sin(fov/2) from any direction,
so one distance serves every azimuth and elevation of a grid, random set or orbit.
"""

from __future__ import annotations

import math

import numpy as np

from joker_core.cameras import ViewRig, check_fov
from joker_core.errors import JokerError
from joker_core.head_model import HeadModel

# Room around the bounding sphere for expressions that reach beyond the neutral template
# (an open jaw, puffed cheeks).
DEFAULT_MARGIN = 1.1


def bounding_sphere(vertices: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre, radius): the bounding box's centre and the farthest vertex's distance to it."""
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) == 0:
        raise JokerError(f"cannot frame {vertices.shape} vertices", "pass N x 3 vertex positions, N >= 1")
    centre = 0.5 * (vertices.min(0) + vertices.max(0))
    return centre, float(np.linalg.norm(vertices - centre, axis=1).max())


def framing_distance(radius: float, fov_deg: float, margin: float = DEFAULT_MARGIN) -> float:
    """Camera distance at which a sphere of `radius` (times `margin`) fills the field of view."""
    return margin * radius / math.sin(math.radians(fov_deg) / 2.0)


def head_view_rig(model: HeadModel, *, fov_deg: float = 30.0, size: int = 512,
                  margin: float = DEFAULT_MARGIN) -> ViewRig:
    """A view rig centred on the model's neutral template, far enough to see all of it."""
    if size < 1:
        raise JokerError(f"image size {size} is too small", "use an image size of at least 1 pixel")
    check_fov(fov_deg)  # before dividing by it
    centre, radius = bounding_sphere(model.v_template)
    return ViewRig(center=tuple(float(c) for c in centre),
                   distance=framing_distance(radius, fov_deg, margin), fov_deg=fov_deg, size=size)

"""The demo head's skin as an implicit surface, and the ray cast that turns it into a mesh.

The head is a smooth union of ellipsoids (cranium, face, brow, cheeks, nose, lips, chin,
ears) and a capped neck, with the orbits and the lip line carved in and, when the eyes are
open, an almond window cut over each eyeball. Its value is negative inside, roughly the
distance to the surface in metres, which is all the smooth blends need.

Each skin vertex is the first crossing of the surface along a fixed ray from
anatomy.SKIN_ORIGIN, so vertices keep their identity whatever is sculpted (the grid is
the topology).
"""

from __future__ import annotations

import numpy as np

from . import anatomy as A


def ellipsoid(points: np.ndarray, centre, radii, tilt_x: float = 0.0) -> np.ndarray:
    """Approximate signed distance to an ellipsoid, optionally tilted about x (radians)."""
    q = points - np.asarray(centre)
    if tilt_x:
        c, s = np.cos(tilt_x), np.sin(tilt_x)
        q = np.stack([q[:, 0], c * q[:, 1] - s * q[:, 2], s * q[:, 1] + c * q[:, 2]], axis=1)
    radii = np.asarray(radii, dtype=float)
    q = q / radii
    return (np.sqrt(np.einsum("ij,ij->i", q, q)) - 1.0) * radii.min()


def vertical_capsule(points: np.ndarray, axis_xz, radius: float, y_bottom: float, y_top: float,
                     rounding: float) -> np.ndarray:
    """Signed distance to a vertical cylinder with rounded flat caps."""
    radial = np.hypot(points[:, 0] - axis_xz[0], points[:, 2] - axis_xz[1]) - (radius - rounding)
    half = (y_top - y_bottom) / 2
    axial = np.abs(points[:, 1] - (y_top + y_bottom) / 2) - (half - rounding)
    outside = np.hypot(np.maximum(radial, 0), np.maximum(axial, 0))
    return outside + np.minimum(np.maximum(radial, axial), 0) - rounding


def smooth_union(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Union of two shapes with a fillet about k metres wide (polynomial smooth minimum)."""
    h = np.clip(0.5 + 0.5 * (b - a) / k, 0.0, 1.0)
    return b * (1 - h) + a * h - k * h * (1 - h)


def smooth_subtract(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """a minus b with a rounded rim."""
    return -smooth_union(-a, b, k)


def eye_centre(side: float, lid_surface_z: float) -> np.ndarray:
    """Eyeball centre for side +1 (left) or -1 (right), set back behind the closed lid."""
    return np.array([side * A.EYE_LEFT[0], A.EYE_LEFT[1], lid_surface_z - A.EYE_RADIUS - A.LID_CLEARANCE])


def _pairs(function, points, left_centre, *args, k: float, base: np.ndarray, carve: bool = False):
    """Blend (or carve) a left feature and its mirror image into `base`."""
    for centre in (left_centre, A.mirror(left_centre)):
        value = function(points, centre, *args)
        base = smooth_subtract(base, value, k) if carve else smooth_union(base, value, k)
    return base


def head_closed_eyes(points: np.ndarray) -> np.ndarray:
    """Implicit skin with the lids shut (no eye windows)."""
    m = A.MOUTH_CENTRE
    f = ellipsoid(points, (0.0, 0.024, -0.012), (0.074, 0.096, 0.098))            # cranium
    f = smooth_union(f, ellipsoid(points, (0.0, -0.040, 0.018), (0.060, 0.062, 0.070)), 0.025)  # face
    f = smooth_union(f, ellipsoid(points, (0.0, -0.062, -0.004), (0.062, 0.040, 0.066)), 0.02)  # jaw
    f = smooth_union(f, ellipsoid(points, (0.0, A.BROW_Y, 0.066), (0.056, 0.011, 0.024)), 0.012)
    f = _pairs(ellipsoid, points, A.CHEEK_LEFT, (0.020, 0.016, 0.022), k=0.02, base=f)
    f = _pairs(ellipsoid, points, np.array([0.033, A.BROW_Y - 0.018, 0.083]), (0.017, 0.009, 0.008),
               k=0.011, base=f, carve=True)                                          # orbits
    f = smooth_union(f, ellipsoid(points, (0.0, 0.012, 0.093), (0.010, 0.030, 0.015), tilt_x=-0.35),
                     0.014)                                                          # nose bridge
    f = smooth_union(f, ellipsoid(points, A.NOSE_TIP - (0.0, 0.002, 0.011), (0.011, 0.010, 0.012)),
                     0.008)                                                          # nose tip
    f = _pairs(ellipsoid, points, np.array([0.0125, -0.012, 0.098]), (0.008, 0.007, 0.009),
               k=0.007, base=f)                                                      # nostril wings
    f = smooth_union(f, ellipsoid(points, m + (0.0, 0.008, -0.006), (0.026, 0.0085, 0.012)), 0.01)
    f = smooth_union(f, ellipsoid(points, m + (0.0, -0.008, -0.008), (0.024, 0.0085, 0.012)), 0.01)
    f = smooth_union(f, ellipsoid(points, A.CHIN - (0.0, 0.0, 0.012), (0.022, 0.017, 0.016)), 0.02)
    f = _pairs(ellipsoid, points, A.EAR_LEFT, (0.012, 0.030, 0.019), k=0.006, base=f)
    neck = vertical_capsule(points, (0.0, -0.018), 0.055, A.NECK_BOTTOM_Y, 0.0, rounding=0.012)
    f = smooth_union(f, neck, 0.03)
    groove = ellipsoid(points, m + (0.0, 0.0, -0.002), (A.MOUTH_HALF_WIDTH + 0.002, 0.0012, 0.010))
    return smooth_subtract(f, groove, 0.002)


def eye_window(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The almond opening over one eyeball: a shell just outside it, clipped to the lid outline."""
    offset = points - centre
    shell = np.sqrt(np.einsum("ij,ij->i", offset, offset)) - (A.EYE_RADIUS + 0.001)
    dx = (points[:, 0] - centre[0]) / 0.0120
    dy = (points[:, 1] - centre[1] + 0.0015) / 0.0085
    almond = (np.hypot(dx, dy) + 0.3 * np.abs(dx) * dy - 1.0) * 0.0085  # the dx*dy term: upper lid arches
    return np.maximum(shell, almond)


def head_open_eyes(points: np.ndarray, eye_centres: list[np.ndarray]) -> np.ndarray:
    f = head_closed_eyes(points)
    for centre in eye_centres:
        f = np.maximum(f, -eye_window(points, centre))
    return f


def first_crossing(implicit, directions: np.ndarray, origin=(0.0, 0.0, 0.0), r_min: float = 0.03,
                   r_max: float = 0.24, step: float = 0.005, refinements: int = 16) -> np.ndarray:
    """Distance along each unit direction from `origin` (inside) to the first crossing outward."""
    origin = np.asarray(origin, dtype=float)
    radii = np.arange(r_min, r_max + step, step)
    samples = implicit((origin + directions[:, None, :] * radii[None, :, None]).reshape(-1, 3))
    outside = samples.reshape(len(directions), len(radii)) > 0
    first = outside.argmax(axis=1)
    lo, hi = radii[np.maximum(first - 1, 0)], radii[first]
    for _ in range(refinements):
        mid = (lo + hi) / 2
        out = implicit(origin + directions * mid[:, None]) > 0
        hi, lo = np.where(out, mid, hi), np.where(out, lo, mid)
    return (lo + hi) / 2

"""Named view sets on the view rig ("grid:5x3", "random:8", "orbit:24"), with each view's
azimuth and elevation. Pure numpy, so command lines can parse them without loading torch."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from joker_core.cameras import Camera, ViewRig
from joker_core.errors import JokerError

VIEW_SET_HELP = "grid:AZxEL (e.g. grid:5x3), random:N or orbit:N"
MAX_VIEWS = 10_000
_VIEW_SET = re.compile(r"^(?:grid:(\d+)x(\d+)|random:(\d+)|orbit:(\d+))$")


@dataclass(frozen=True)
class View:
    camera: Camera
    azimuth: float    # degrees, FLAME frame (see joker_core.cameras)
    elevation: float  # degrees


def view_set(rig: ViewRig, spec: str, azimuth_range: float = 45.0, elevation_range: float = 20.0,
             seed: int = 0) -> list[View]:
    """The views named by `spec` (VIEW_SET_HELP); ranges are +- degrees around the front."""
    match = _VIEW_SET.match(spec.strip())
    if not match:
        raise JokerError(f"view set '{spec}' is not understood", f"write it as {VIEW_SET_HELP}")
    n_azimuth, n_elevation, n_random, n_orbit = (int(g) if g else None for g in match.groups())
    count = n_random or n_orbit or (n_azimuth or 0) * (n_elevation or 0)
    if not 1 <= count <= MAX_VIEWS:
        raise JokerError(f"view set '{spec}' has {count} views", f"ask for 1 to {MAX_VIEWS} views")
    _check_range("azimuth", azimuth_range, 180.0)
    _check_range("elevation", elevation_range, 89.0)  # +-90 would look straight down the up axis
    if n_orbit:
        cameras = rig.orbit(n_orbit)
    elif n_random:
        cameras = rig.random(n_random, azimuth_range, elevation_range, seed)
    else:
        cameras = rig.grid(n_azimuth, n_elevation, azimuth_range, elevation_range)
    return [View(camera, *_angles(camera, rig)) for camera in cameras]


def _check_range(name: str, value: float, limit: float) -> None:
    if not 0.0 <= value <= limit:  # also refuses NaN
        raise JokerError(f"{name} range {value} is outside 0..{limit:g} degrees",
                         f"give the {name} range as +-degrees between 0 and {limit:g}")


def _angles(camera: Camera, rig: ViewRig) -> tuple[float, float]:
    """Azimuth and elevation of a rig camera, read back from where it stands."""
    x, y, z = (camera.c2w[:3, 3] - np.asarray(rig.center)) / rig.distance
    return math.degrees(math.atan2(x, z)), math.degrees(math.asin(max(-1.0, min(1.0, y))))

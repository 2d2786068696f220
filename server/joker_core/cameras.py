"""Cameras and view rigs in the shared convention (see conventions.py).

A view rig places cameras on a sphere around the head centre, parameterised by azimuth and
elevation in degrees (FLAME frame: azimuth 0 / elevation 0 looks at the face from +z;
positive azimuth moves the camera toward +x, positive elevation toward +y).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import JokerError


def check_fov(fov_deg: float) -> float:
    """A field of view in degrees that a pinhole camera can have."""
    if not 1.0 <= fov_deg <= 170.0:
        raise JokerError(f"field of view {fov_deg:g} degrees is out of [1, 170]",
                         "use a field of view between 1 and 170 degrees")
    return fov_deg


@dataclass(frozen=True)
class Camera:
    """A pinhole camera: camera-to-world pose (OpenGL axes) and pixel intrinsics."""

    c2w: np.ndarray  # 4 x 4
    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_fov(cls, c2w: np.ndarray, fov_deg: float, width: int, height: int) -> "Camera":
        """Intrinsics from a field of view across the image's larger side (Blender's
        sensor fit AUTO), principal point at the image centre."""
        check_fov(fov_deg)
        focal = 0.5 * max(width, height) / math.tan(math.radians(fov_deg) / 2.0)
        return cls(np.asarray(c2w, dtype=np.float64), focal, focal, width / 2.0, height / 2.0,
                   int(width), int(height))

    @property
    def w2c(self) -> np.ndarray:
        return np.linalg.inv(self.c2w)

    @property
    def K(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points N x 3 -> (pixel coordinates N x 2 (u right, v down), depth N)."""
        cam = to_camera_space(self, points)
        depth = -cam[:, 2]
        u = self.fx * cam[:, 0] / depth + self.cx
        v = -self.fy * cam[:, 1] / depth + self.cy
        return np.stack([u, v], axis=1), depth

    def to_dict(self) -> dict:
        return {"c2w": self.c2w.tolist(), "fx": self.fx, "fy": self.fy, "cx": self.cx,
                "cy": self.cy, "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, data: dict) -> "Camera":
        try:
            c2w = np.asarray(data["c2w"], dtype=np.float64)
            camera = cls(c2w, float(data["fx"]), float(data["fy"]), float(data["cx"]),
                         float(data["cy"]), int(data["width"]), int(data["height"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise JokerError(f"camera description is malformed ({exc})",
                             "give c2w (4x4), fx, fy, cx, cy, width and height") from exc
        if c2w.shape != (4, 4) or not np.isfinite(c2w).all():
            raise JokerError("camera c2w must be a finite 4x4 matrix",
                             "send the camera-to-world matrix as 4 rows of 4 numbers")
        if min(camera.width, camera.height) < 1 or camera.fx <= 0 or camera.fy <= 0:
            raise JokerError("camera size and focal lengths must be positive",
                             "send width/height >= 1 and fx/fy > 0")
        return camera


def to_camera_space(camera: Camera, points: np.ndarray) -> np.ndarray:
    points = np.asarray(points, dtype=np.float64)
    w2c = camera.w2c
    return points @ w2c[:3, :3].T + w2c[:3, 3]


def look_at(eye: Sequence[float], target: Sequence[float], up: Sequence[float] = (0, 1, 0)) -> np.ndarray:
    """Camera-to-world matrix of a camera at `eye` looking at `target` (OpenGL axes)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    back = eye - target
    back /= np.linalg.norm(back)
    right = np.cross(up, back)
    if np.linalg.norm(right) < 1e-9:  # looking straight along `up`
        right = np.cross((0.0, 0.0, 1.0), back)
    right /= np.linalg.norm(right)
    true_up = np.cross(back, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, true_up, back, eye
    return c2w


def orbit_position(azimuth_deg: float, elevation_deg: float, distance: float,
                   center: Sequence[float] = (0, 0, 0)) -> np.ndarray:
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    offset = np.array([math.cos(el) * math.sin(az), math.sin(el), math.cos(el) * math.cos(az)])
    return np.asarray(center, dtype=np.float64) + distance * offset


@dataclass(frozen=True)
class ViewRig:
    """Where the cameras sit: the head centre, their distance and lens, the image size."""

    center: tuple[float, float, float] = (0.0, 0.0, 0.0)
    distance: float = 0.6
    fov_deg: float = 30.0
    size: int = 512

    def camera(self, azimuth_deg: float, elevation_deg: float) -> Camera:
        eye = orbit_position(azimuth_deg, elevation_deg, self.distance, self.center)
        return Camera.from_fov(look_at(eye, self.center), self.fov_deg, self.size, self.size)

    def grid(self, n_azimuth: int, n_elevation: int, azimuth_range: float = 45.0,
             elevation_range: float = 20.0) -> list[Camera]:
        """The published view set is grid(20, 20, 45, 20): a grid over azimuth +-45 and
        elevation +-20 degrees."""
        if n_azimuth < 1 or n_elevation < 1:
            raise JokerError("a view grid needs at least one azimuth and one elevation",
                             "use counts >= 1")
        azimuths = np.linspace(-azimuth_range, azimuth_range, n_azimuth) if n_azimuth > 1 else [0.0]
        elevations = np.linspace(-elevation_range, elevation_range, n_elevation) if n_elevation > 1 else [0.0]
        return [self.camera(a, e) for e in elevations for a in azimuths]

    def random(self, count: int, azimuth_range: float = 45.0, elevation_range: float = 20.0,
               seed: int = 0) -> list[Camera]:
        rng = np.random.default_rng(seed)
        azimuths = rng.uniform(-azimuth_range, azimuth_range, count)
        elevations = rng.uniform(-elevation_range, elevation_range, count)
        return [self.camera(a, e) for a, e in zip(azimuths, elevations)]

    def orbit(self, count: int, elevation_deg: float = 0.0) -> list[Camera]:
        """A full turntable: `count` views evenly spaced in azimuth, starting at the front."""
        return [self.camera(360.0 * i / count, elevation_deg) for i in range(count)]

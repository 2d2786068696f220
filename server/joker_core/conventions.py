"""Units, axes and image encodings that every part of Joker shares (design.md §2).

- Metres. FLAME frame: +y up, the face looks along +z.
- Blender frame: +z up; the rig is rotated +90 degrees about X, so the face looks along -y.
- Cameras: camera-to-world 4x4 in the OpenGL/Blender convention (looks along its -z, +y up);
  pixel intrinsics with the image origin at the top-left corner, pixel centres at +0.5.
- Normal maps: camera-space unit normals (x right, y up, z toward the viewer) encoded as
  RGB = round((n * 0.5 + 0.5) * 255), background (0, 0, 0).
"""

from __future__ import annotations

import numpy as np

# Rotation +90 degrees about X: FLAME (y up, face +z) -> Blender (z up, face -y).
FLAME_TO_BLENDER = np.array(
    [[1.0, 0.0, 0.0, 0.0],
     [0.0, 0.0, -1.0, 0.0],
     [0.0, 1.0, 0.0, 0.0],
     [0.0, 0.0, 0.0, 1.0]]
)
BLENDER_TO_FLAME = FLAME_TO_BLENDER.T

NORMAL_MAP_BACKGROUND = (0, 0, 0)


def flame_to_blender_points(points: np.ndarray) -> np.ndarray:
    """Map N x 3 points from the FLAME frame to the Blender frame."""
    return np.asarray(points) @ FLAME_TO_BLENDER[:3, :3].T


def encode_normals(normals: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """H x W x 3 camera-space normals + H x W foreground mask -> H x W x 3 uint8 RGB."""
    normals = np.asarray(normals, dtype=np.float64)
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    unit = normals / np.maximum(length, 1e-12)
    rgb = np.rint((unit * 0.5 + 0.5) * 255.0).clip(0, 255).astype(np.uint8)
    rgb[~np.asarray(mask, dtype=bool)] = NORMAL_MAP_BACKGROUND
    return rgb


def decode_normals(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """H x W x 3 uint8 normal map -> (unit camera-space normals, foreground mask)."""
    rgb = np.asarray(rgb)
    mask = rgb.any(axis=-1)
    normals = rgb.astype(np.float64) / 255.0 * 2.0 - 1.0
    normals /= np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)
    normals[~mask] = 0.0
    return normals, mask

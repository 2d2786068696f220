"""Synthetic photos with known answers: the demo head, coloured so that a face detector
sees a face (skin, lips, brows, dark irises, shading), posed with known shape, expression,
jaw and head pose, rendered through a known camera in front of a chosen background."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from joker.fit.solve import cached_embedding
from joker.render.normal_maps import vertex_normals
from joker.render.raster import interpolate, rasterize, world_to_camera
from joker_core.cameras import Camera, look_at, orbit_position
from joker_core.demo_head import anatomy as A
from joker_core.head_model import HeadModel
from joker_core.lbs import numpy_rig, pose
from joker_core.rig_params import RigParams

SKIN = np.array([0.85, 0.65, 0.55])
LIPS = np.array([0.65, 0.28, 0.28])
BROWS = np.array([0.25, 0.17, 0.12])
MOUTH_INSIDE = np.array([0.1, 0.75, 0.2])  # a colour no face has, to find it again
EYE_WHITE, IRIS = np.array([0.92, 0.92, 0.9]), np.array([0.12, 0.08, 0.06])
LIGHT = np.array([0.2, 0.4, 1.0]) / np.linalg.norm([0.2, 0.4, 1.0])


@dataclass(frozen=True)
class SyntheticPhoto:
    image: np.ndarray        # H x W x 3 uint8
    camera: Camera
    params: RigParams
    vertices: np.ndarray     # the posed head (FLAME frame)
    landmarks: np.ndarray    # 68 layout numbers -> pixels, for the embedded ones
    indices: np.ndarray
    mask: np.ndarray         # H x W bool: the head


def part_colours(head: HeadModel, vertices: np.ndarray) -> np.ndarray:
    """Per-vertex albedo of the demo head, from its parts and anatomy."""
    colours = np.tile(SKIN, (len(vertices), 1))
    parts = head.metadata["vertex_parts"]
    rest = head.v_template
    lips = (np.abs(rest[:, 0]) < A.MOUTH_HALF_WIDTH + 0.002) & (np.abs(rest[:, 1] - A.MOUTH_CENTRE[1]) < 0.011) \
        & (rest[:, 2] > 0.07)
    lip_shape = (rest[:, 1] - A.MOUTH_CENTRE[1]) ** 2 / 0.011 ** 2 + rest[:, 0] ** 2 / (A.MOUTH_HALF_WIDTH + 0.002) ** 2
    colours[lips & (lip_shape < 1.0)] = LIPS
    brows = (np.abs(np.abs(rest[:, 0]) - 0.032) < 0.022) & (np.abs(rest[:, 1] - A.BROW_Y - 0.004) < 0.004) \
        & (rest[:, 2] > 0.06)
    colours[brows] = BROWS
    for name in ("pouch", "tongue"):
        first, end = parts[name]
        colours[first:end] = MOUTH_INSIDE
    for name, centre in (("eyeball_left", A.EYE_LEFT), ("eyeball_right", A.mirror(A.EYE_LEFT))):
        first, end = parts[name]
        ids = np.arange(first, end)
        front = np.linalg.norm(rest[ids, :2] - centre[:2], axis=1) < 0.0055
        colours[ids] = EYE_WHITE
        colours[ids[front & (rest[ids, 2] > np.median(rest[ids, 2]))]] = IRIS
    return colours


def synthetic_photo(head: HeadModel, params: RigParams, azimuth: float = 0.0, elevation: float = 0.0,
                    roll: float = 0.0, distance: float = 0.6, fov_deg: float = 25.0, size: int = 512,
                    background=(0.55, 0.6, 0.65), offset=(0.0, 0.0)) -> SyntheticPhoto:
    vertices = pose(numpy_rig(head), params).vertices
    centre = np.array([0.0, 0.0, 0.03])
    c2w = look_at(orbit_position(azimuth, elevation, distance, centre), centre)
    c, s = np.cos(roll), np.sin(roll)
    c2w[:3, :3] = c2w[:3, :3] @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    camera = Camera.from_fov(c2w, fov_deg, size, size)
    camera = Camera(camera.c2w, camera.fx, camera.fy, camera.cx + offset[0], camera.cy + offset[1], size, size)
    points = world_to_camera(torch.as_tensor(vertices, dtype=torch.float32), camera)
    faces = torch.as_tensor(head.faces)
    fragments = rasterize(points, faces, camera)
    albedo = interpolate(torch.as_tensor(part_colours(head, vertices), dtype=torch.float32), faces, fragments)
    normals = interpolate(vertex_normals(torch.as_tensor(vertices, dtype=torch.float32), faces), faces, fragments)
    normals = torch.nn.functional.normalize(normals, dim=-1)
    shading = 0.45 + 0.55 * (normals @ torch.as_tensor(LIGHT, dtype=torch.float32)).clamp(min=0)
    image = torch.where(fragments.mask[..., None], albedo * shading[..., None],
                        torch.as_tensor(background, dtype=torch.float32))
    embedding = cached_embedding(head, None)
    return SyntheticPhoto((image.numpy() * 255).round().astype(np.uint8), camera, params, vertices,
                          embedding.pixels(vertices, head.faces, camera), embedding.all_indices,
                          fragments.mask.numpy())

"""The exported mesh as users will see it, rendered by the engine's rasterizer: its
texture alone (what the metrics compare with the prior) and, for the turntable strip,
lit from the camera."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from joker_core.cameras import Camera, ViewRig

from ..mesh.export import TexturedMesh
from ..render.raster import interpolate, rasterize, world_to_camera

AMBIENT = 0.35
SIZE = 256  # px per frame, whatever size the views were trained at


@dataclass(frozen=True)
class MeshView:
    """What one camera sees of a textured mesh: H x W each."""

    colour: torch.Tensor       # H x W x 3 float in [0, 1], the texture's, zero off the mesh
    normals: torch.Tensor      # H x W x 3 unit (world), zero off the mesh
    triangle_id: torch.Tensor  # H x W int64, -1 off the mesh
    depth: torch.Tensor        # H x W float, along the viewing axis

    @property
    def mask(self) -> torch.Tensor:
        return self.triangle_id >= 0


def view_mesh(mesh: TexturedMesh, camera: Camera) -> MeshView:
    vertices = torch.tensor(mesh.vertices, dtype=torch.float32)
    faces = torch.tensor(mesh.faces, dtype=torch.int64)
    fragments = rasterize(world_to_camera(vertices, camera), faces, camera)
    uv = interpolate(torch.tensor(mesh.uvs, dtype=torch.float32), faces, fragments)
    normals = interpolate(torch.tensor(mesh.normals, dtype=torch.float32), faces, fragments)
    colour = torch.where(fragments.mask[..., None], mesh.colour_at(uv), 0.0)
    return MeshView(colour, F.normalize(normals, dim=-1), fragments.triangle_id, fragments.depth)


def render_unlit(mesh: TexturedMesh, cameras: list[Camera], background=(1.0, 1.0, 1.0)) -> torch.Tensor:
    """N x 3 x H x W: the texture as the cameras see it on the mesh, over `background`."""
    images = []
    for camera in cameras:
        seen = view_mesh(mesh, camera)
        images.append(torch.where(seen.mask[..., None], seen.colour, torch.tensor(background)).permute(2, 0, 1))
    return torch.stack(images)


def render_textured(mesh: TexturedMesh, rig: ViewRig, azimuth: float, elevation: float = 0.0) -> np.ndarray:
    """H x W x 3 uint8 of `mesh` from the rig's camera at (azimuth, elevation), white ground."""
    camera = rig.camera(azimuth, elevation)
    seen = view_mesh(mesh, camera)
    towards_camera = torch.as_tensor(camera.c2w[:3, 2], dtype=torch.float32)
    lambert = (seen.normals @ towards_camera).clamp(min=0)
    shaded = seen.colour * (AMBIENT + (1 - AMBIENT) * lambert[..., None])
    image = torch.where(seen.mask[..., None], shaded, torch.ones(3))
    return (image.clamp(0, 1) * 255).round().byte().numpy()


def turntable_strip(mesh: TexturedMesh, rig: ViewRig, frames: int = 8) -> np.ndarray:
    """`frames` views evenly around the head, side by side, starting at the front."""
    sized = ViewRig(rig.center, rig.distance, rig.fov_deg, SIZE)
    return np.concatenate([render_textured(mesh, sized, 360.0 * i / frames) for i in range(frames)], axis=1)

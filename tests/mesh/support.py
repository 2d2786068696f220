"""Fields and settings the mesh tests share: known surfaces, known colours, small sizes."""

from __future__ import annotations

import torch

from joker.render.raster import interpolate, rasterize, world_to_camera

from joker.box import Box
from joker.mesh import MeshSettings
from analytic_fields import SURFACE_LEVEL, HandledSphere, Sphere

SPHERE = Sphere(center=(0.01, -0.02, 0.03), radius=0.1)
HANDLED_SPHERE = HandledSphere(center=SPHERE.center, radius=SPHERE.radius)
SPHERE_BOX = Box(center=(0.01, -0.01, 0.025), half_size=0.155)  # off-centre: axis mix-ups show
# Small enough to mesh in about a second, large enough to have seams and several charts.
SMALL = MeshSettings(resolution=64, iso_level=SURFACE_LEVEL, texture_size=256, face_budget=4000)


def position_color(points: torch.Tensor) -> torch.Tensor:
    """Colour linear in position over the sphere's box: a known answer at every point."""
    low, size = points.new_tensor(SPHERE_BOX.minimum), points.new_tensor(SPHERE_BOX.size)
    return (points - low) / size


def true_views(mesh, cameras) -> torch.Tensor:
    """N x 3 x H x W: `position_color` at the surface point each pixel sees, over white."""
    points, faces = torch.from_numpy(mesh.vertices).float(), torch.from_numpy(mesh.faces)
    images = []
    for camera in cameras:
        fragments = rasterize(world_to_camera(points, camera), faces, camera)
        colour = position_color(interpolate(points, faces, fragments).view(-1, 3)).view(*fragments.mask.shape, 3)
        images.append(torch.where(fragments.mask[..., None], colour.clamp(0, 1), 1.0).permute(2, 0, 1))
    return torch.stack(images)

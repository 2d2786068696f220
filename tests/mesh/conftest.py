"""Small analytic fields meshed once per session; each test then checks one property."""

from __future__ import annotations

import pytest
import torch

from joker.mesh import BoundingBox, MeshSettings, build_textured_mesh, mesh_from_field
from joker.mesh.analytic import HEAD_BOX, SURFACE_LEVEL, HeadLikeField, Sphere

SPHERE = Sphere(center=(0.01, -0.02, 0.03), radius=0.1)
SPHERE_BOX = BoundingBox((-0.15, -0.16, -0.13), (0.17, 0.14, 0.18))
# Small enough to mesh in about a second, large enough to have seams and several charts.
SMALL = MeshSettings(resolution=64, iso_level=SURFACE_LEVEL, texture_size=256, face_budget=4000)


def position_color(points: torch.Tensor) -> torch.Tensor:
    """Colour linear in position over the sphere's box: a known answer at every point."""
    low, size = points.new_tensor(SPHERE_BOX.minimum), points.new_tensor(SPHERE_BOX.size)
    return (points - low) / size


@pytest.fixture(scope="session")
def sphere_mesh():
    return build_textured_mesh(SPHERE.density, position_color, SPHERE_BOX, SMALL)


@pytest.fixture(scope="session")
def head_files(tmp_path_factory):
    field = HeadLikeField()
    return mesh_from_field(field.density, field.color, HEAD_BOX, tmp_path_factory.mktemp("head"), SMALL)

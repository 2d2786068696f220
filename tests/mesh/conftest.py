"""Small analytic fields meshed once per session; each test then checks one property."""

from __future__ import annotations

import pytest

from joker.mesh import build_textured_mesh, mesh_from_field
from joker.mesh.analytic import HEAD_BOX, HeadLikeField

from .support import SMALL, SPHERE, SPHERE_BOX, position_color


@pytest.fixture(scope="session")
def sphere_mesh():
    return build_textured_mesh(SPHERE.density, position_color, SPHERE_BOX, SMALL)


@pytest.fixture(scope="session")
def head_files(tmp_path_factory):
    field = HeadLikeField()
    return mesh_from_field(field.density, field.color, HEAD_BOX, tmp_path_factory.mktemp("head"), SMALL)

"""Small analytic fields meshed once per session; each test then checks one property."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from joker.mesh import MeshStats, build_textured_mesh, write_mesh_files
from analytic_fields import HEAD_BOX, HeadLikeField

from .support import SMALL, SPHERE, SPHERE_BOX, position_color


@pytest.fixture(scope="session")
def sphere_mesh():
    return build_textured_mesh(SPHERE.density, position_color, SPHERE_BOX, SMALL)


@pytest.fixture(scope="session")
def head_files(tmp_path_factory):
    return mesh_head_files(tmp_path_factory.mktemp("head"))


def mesh_head_files(folder, name: str = "head") -> SimpleNamespace:
    """The head-like field meshed and written as the job runner does: files and stats."""
    field, stats = HeadLikeField(), MeshStats()
    mesh = build_textured_mesh(field.density, field.color, HEAD_BOX, SMALL, stats)
    files = write_mesh_files(mesh, folder, name, stats)
    return SimpleNamespace(**vars(files), stats=stats, mesh=mesh)

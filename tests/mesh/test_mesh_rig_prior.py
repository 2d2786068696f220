"""The rig within tolerance (mesh/rig_prior.py): a surface within the tolerance of the rig
becomes the rig's, a true departure keeps its shape less the tolerance, and the
registered head's offsets shrink the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from analytic_fields import SURFACE_LEVEL, density_from_sdf, ellipsoid_sdf
from joker.box import Box
from joker.mesh.extract import marching_cubes, sample_density_grid
from joker.mesh.pipeline import MeshSettings
from joker.mesh.register import RegisterSettings, flipped_faces, register_head
from joker.mesh.rig_prior import RigSurface, onto_rig, shrink
from joker.mesh.surface import Surface
from joker_core.errors import JokerError

RADIUS, TOLERANCE = 0.05, 0.001


def test_shrink_removes_short_offsets_and_shortens_long_ones_along_themselves():
    offsets = np.random.default_rng(0).normal(size=(500, 3)) * 0.001
    length = np.linalg.norm(offsets, axis=1)
    shrunk = shrink(offsets, TOLERANCE)
    new_length = np.linalg.norm(shrunk, axis=1)
    np.testing.assert_allclose(new_length, np.maximum(length - TOLERANCE, 0.0), atol=1e-15)
    kept = length > TOLERANCE
    np.testing.assert_allclose(shrunk[kept] / new_length[kept, None], offsets[kept] / length[kept, None], atol=1e-12)
    assert shrink(offsets, 0.0) is offsets


def test_a_noisy_surface_takes_the_rig_and_a_true_bump_keeps_its_height_less_the_tolerance():
    rig = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    field = trimesh.creation.icosphere(subdivisions=5, radius=RADIUS)
    rng = np.random.default_rng(1)
    up = field.vertices[:, 2] / RADIUS
    bump = 0.006 * np.clip((up - 0.8) / 0.2, 0, 1)  # a 6 mm cap: the prior's own shape
    radial = RADIUS + rng.uniform(-0.0008, 0.0008, len(up)) + bump  # plus the field's noise
    vertices = field.vertices / np.linalg.norm(field.vertices, axis=1, keepdims=True) * radial[:, None]

    drawn = onto_rig(vertices, np.asarray(field.faces), RigSurface(rig.vertices, rig.faces, TOLERANCE))

    surface = Surface(rig.vertices, rig.faces)
    before, after = surface.closest(vertices)[1], surface.closest(drawn)[1]
    within = before <= TOLERANCE
    assert within.mean() > 0.8 and after[within].max() < 1e-9  # on the rig's own triangles
    np.testing.assert_allclose(after[~within], before[~within] - TOLERANCE, atol=1e-9)
    top = up > 0.95
    assert np.abs(np.linalg.norm(drawn[top], axis=1) - (RADIUS + bump[top] - TOLERANCE)).max() < 1.2e-3


def test_the_registered_head_keeps_its_offsets_less_the_tolerance():
    radii = (0.056, 0.05, 0.045)  # up to 6 mm out and 5 mm in from the rig
    def density(points):
        return density_from_sdf(ellipsoid_sdf(points, (0.0, 0.0, 0.0), radii), edge=0.002)
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=RADIUS)
    rig, faces = np.asarray(sphere.vertices), np.asarray(sphere.faces)
    box = Box.around((0.0, 0.0, 0.0), 0.09)
    grid = sample_density_grid(density, box, 64, iso_level=SURFACE_LEVEL, coarse_stride=1)
    mesh = marching_cubes(grid, SURFACE_LEVEL, box)
    args = (rig, faces, np.ones(len(rig), bool), *mesh, density, SURFACE_LEVEL)
    free = np.linalg.norm(register_head(*args).offset, axis=1)
    held = register_head(*args, RegisterSettings(tolerance=TOLERANCE))
    np.testing.assert_allclose(np.linalg.norm(held.offset, axis=1), np.maximum(free - TOLERANCE, 0), atol=1e-9)
    assert flipped_faces(rig, held.vertices, faces) == 0
    assert np.abs(ellipsoid_sdf(torch.from_numpy(held.vertices), (0, 0, 0), radii).numpy()).mean() < TOLERANCE


def test_the_tolerance_is_grid_cells_of_the_mesh_and_refused_outside_its_range():
    settings = MeshSettings(resolution=128, rig_tolerance=1.5)
    rig = settings.rig_surface(np.zeros((3, 3)), np.array([[0, 1, 2]]), Box.around((0, 0, 0), 0.1, margin=1.0))
    assert rig.tolerance == pytest.approx(1.5 * 0.2 / 128)
    with pytest.raises(JokerError, match="rig tolerance"):
        MeshSettings(rig_tolerance=-1.0)

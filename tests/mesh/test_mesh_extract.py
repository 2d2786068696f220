"""Density grid sampling and marching cubes on fields whose surface is known exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from analytic_fields import SURFACE_LEVEL, HeadLikeField, HEAD_BOX
from joker.mesh.cleanup import signed_volume
from joker.mesh.extract import blur_grid, grid_to_world, marching_cubes, sample_density_grid
from joker.box import Box
from joker_core.errors import JokerError

from .support import SPHERE, SPHERE_BOX


def test_grid_to_world_maps_corner_samples_to_box_corners():
    corners = grid_to_world(SPHERE_BOX, 64, np.array([[0, 0, 0], [64, 64, 64], [32, 0, 64]]))
    np.testing.assert_allclose(corners[0], SPHERE_BOX.minimum)
    np.testing.assert_allclose(corners[1], SPHERE_BOX.maximum)
    np.testing.assert_allclose(corners[2], [0.01, -0.165, 0.18])


def test_sphere_surface_is_round_closed_and_outward():
    grid = sample_density_grid(SPHERE.density, SPHERE_BOX, 64, iso_level=SURFACE_LEVEL)
    vertices, faces = marching_cubes(grid, SURFACE_LEVEL, SPHERE_BOX)
    radii = np.linalg.norm(vertices - np.array(SPHERE.center), axis=1)
    np.testing.assert_allclose(radii, SPHERE.radius, rtol=0.01)
    assert trimesh.Trimesh(vertices, faces, process=False).is_watertight
    assert signed_volume(vertices, faces) == pytest.approx(4 / 3 * np.pi * SPHERE.radius ** 3, rel=0.02)


def test_narrow_band_sampling_gives_the_dense_surface():
    head = HeadLikeField()
    dense = sample_density_grid(head.density, HEAD_BOX, 64, iso_level=SURFACE_LEVEL, coarse_stride=1)
    banded = sample_density_grid(head.density, HEAD_BOX, 64, iso_level=SURFACE_LEVEL, coarse_stride=4)
    assert not np.array_equal(dense, banded)  # far from the surface the band interpolates
    dense_vertices, dense_faces = marching_cubes(dense, SURFACE_LEVEL, HEAD_BOX)
    banded_vertices, banded_faces = marching_cubes(banded, SURFACE_LEVEL, HEAD_BOX)
    np.testing.assert_array_equal(banded_faces, dense_faces)
    np.testing.assert_allclose(banded_vertices, dense_vertices, atol=1e-6)


def test_surface_cut_by_the_box_is_capped():
    box = Box(center=(0.0, 0.0, 0.2), half_size=0.2)  # cuts the sphere's lower half off
    grid = sample_density_grid(SPHERE.density, box, 32, iso_level=SURFACE_LEVEL)
    vertices, faces = marching_cubes(grid, SURFACE_LEVEL, box)
    assert trimesh.Trimesh(vertices, faces, process=False).is_watertight
    assert vertices[:, 2].min() == pytest.approx(0.0)


def test_empty_field_says_so():
    grid = sample_density_grid(lambda p: torch.zeros(len(p)), SPHERE_BOX, 16, iso_level=SURFACE_LEVEL)
    with pytest.raises(JokerError, match="density field is empty"):
        marching_cubes(grid, SURFACE_LEVEL, SPHERE_BOX)


def test_field_filling_the_box_says_so():
    grid = sample_density_grid(lambda p: torch.full((len(p),), 1e3), SPHERE_BOX, 16, iso_level=SURFACE_LEVEL)
    with pytest.raises(JokerError, match="fills the whole box"):
        marching_cubes(grid, SURFACE_LEVEL, SPHERE_BOX)


def test_nan_density_is_refused():
    def broken(points):
        density = SPHERE.density(points)
        density[points[:, 0] > 0.05] = float("nan")
        return density

    with pytest.raises(JokerError, match="NaN.*distillation"):
        sample_density_grid(broken, SPHERE_BOX, 16, iso_level=SURFACE_LEVEL)


def test_density_of_the_wrong_shape_is_refused():
    with pytest.raises(JokerError, match="return 1 value"):
        sample_density_grid(lambda p: torch.zeros(len(p), 2), SPHERE_BOX, 16, iso_level=SURFACE_LEVEL)


@pytest.mark.parametrize("resolution, stride", [(4, 1), (2048, 4), (66, 4), (64, 0)])
def test_bad_grid_settings_are_refused(resolution, stride):
    with pytest.raises(JokerError, match="Fix:"):
        sample_density_grid(SPHERE.density, SPHERE_BOX, resolution, iso_level=SURFACE_LEVEL, coarse_stride=stride)


@pytest.mark.parametrize("center, half_size", [((0, 0, 0), 0.0), ((0, 0), 1.0), ((0, 0, float("nan")), 1.0),
                                              ((0, 0, 0), float("inf"))])
def test_bad_boxes_are_refused(center, half_size):
    with pytest.raises(JokerError, match="bounding box"):
        Box(center, half_size)


def _faces_turned_away(vertices: np.ndarray, faces: np.ndarray) -> int:
    """Faces turned more than 60 degrees from the sphere's radial direction: a crevice's
    walls (they shade dark), none on a sphere."""
    surface = trimesh.Trimesh(vertices, faces, process=False)
    radial = surface.triangles_center - np.array(SPHERE.center)
    cosine = (surface.face_normals * radial).sum(1) / np.linalg.norm(radial, axis=1)
    return int((cosine < 0.5).sum())


def test_grid_blur_fills_a_crevice_one_cell_wide_and_keeps_the_outline():
    grid = sample_density_grid(SPHERE.density, SPHERE_BOX, 48, iso_level=SURFACE_LEVEL, coarse_stride=1)
    cracked = grid.copy()
    cracked[24, :, 30:] *= 0.3  # the density dips under the iso level in a one-cell slab: a crevice
    assert _faces_turned_away(*marching_cubes(cracked, SURFACE_LEVEL, SPHERE_BOX)) > 50
    vertices, faces = marching_cubes(blur_grid(cracked, 0.75), SURFACE_LEVEL, SPHERE_BOX)
    assert _faces_turned_away(vertices, faces) == 0
    radii = np.linalg.norm(vertices - np.array(SPHERE.center), axis=1)
    np.testing.assert_allclose(np.median(radii), SPHERE.radius, rtol=0.02)
    np.testing.assert_array_equal(blur_grid(cracked, 0.0), cracked)

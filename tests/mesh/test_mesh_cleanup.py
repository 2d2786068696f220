"""Cleanup: floaters, winding, holes and the face budget, on real marching-cubes output."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from joker.mesh import cleanup
from analytic_fields import SURFACE_LEVEL
from joker.mesh.extract import marching_cubes, sample_density_grid
from joker.mesh.pipeline import shading_normals
from joker_core.errors import JokerError

from .support import HANDLED_SPHERE, SPHERE, SPHERE_BOX


@pytest.fixture(scope="module")
def sphere_surface():
    grid = sample_density_grid(SPHERE.density, SPHERE_BOX, 48, iso_level=SURFACE_LEVEL)
    return marching_cubes(grid, SURFACE_LEVEL, SPHERE_BOX)


@pytest.fixture(scope="module")
def handled_sphere_surface():
    grid = sample_density_grid(HANDLED_SPHERE.density, SPHERE_BOX, 64, iso_level=SURFACE_LEVEL)
    return marching_cubes(grid, SURFACE_LEVEL, SPHERE_BOX)


def test_floater_is_removed(sphere_surface):
    vertices, faces = sphere_surface
    floater = trimesh.creation.icosphere(subdivisions=1, radius=0.01)
    all_vertices = np.concatenate([vertices, floater.vertices + [0.14, 0.1, 0.1]])
    all_faces = np.concatenate([faces, floater.faces + len(vertices)])
    kept_vertices, kept_faces = cleanup.keep_large_components(all_vertices, all_faces)
    assert len(kept_faces) == len(faces)
    np.testing.assert_array_equal(kept_vertices, vertices)
    assert np.bincount(kept_faces.ravel()).min() > 0  # no unused vertex left behind


def test_components_above_the_fraction_are_kept(sphere_surface):
    vertices, faces = sphere_surface
    twin = (vertices + [0.3, 0, 0], faces + len(vertices))
    both = np.concatenate([vertices, twin[0]]), np.concatenate([faces, twin[1]])
    assert len(cleanup.keep_large_components(*both, min_fraction=0.5)[1]) == 2 * len(faces)


def test_inward_winding_is_flipped(sphere_surface):
    vertices, faces = sphere_surface
    inward = faces[:, ::-1]
    assert cleanup.signed_volume(vertices, inward) < 0
    assert cleanup.signed_volume(vertices, cleanup.orient_outward(vertices, inward)) > 0


def test_a_hole_is_closed(sphere_surface):
    vertices, faces = sphere_surface
    holed = np.delete(faces, [10, 11, 12], axis=0)
    assert not trimesh.Trimesh(vertices, holed, process=False).is_watertight
    closed_vertices, closed_faces = cleanup.close_surface(vertices, holed)
    assert trimesh.Trimesh(closed_vertices, closed_faces, process=False).is_watertight
    assert cleanup.signed_volume(closed_vertices, closed_faces) == pytest.approx(
        cleanup.signed_volume(vertices, faces), rel=1e-3)


def test_a_surface_decimation_tore_is_closed(handled_sphere_surface):
    """Quadric decimation collapses thin handles into duplicate faces and edges of four
    faces (as it does to the demo head's field); closing makes the surface watertight
    again without losing the sphere."""
    vertices, faces = handled_sphere_surface
    small_vertices, small_faces = cleanup.decimate(vertices, faces, 2000)
    assert not trimesh.Trimesh(small_vertices, small_faces, process=False).is_watertight
    closed_vertices, closed_faces = cleanup.close_surface(small_vertices, small_faces)
    closed = trimesh.Trimesh(closed_vertices, closed_faces, process=False)
    assert closed.is_watertight
    assert len(closed_faces) >= 0.9 * len(small_faces)
    assert cleanup.signed_volume(closed_vertices, closed_faces) == pytest.approx(
        cleanup.signed_volume(vertices, faces), rel=0.05)


@pytest.mark.parametrize("budget", [500, 2000])
def test_decimation_honours_the_budget_and_keeps_the_shape(sphere_surface, budget):
    vertices, faces = sphere_surface
    assert len(faces) > budget
    small_vertices, small_faces = cleanup.decimate(vertices, faces, budget)
    assert budget * 0.9 <= len(small_faces) <= budget
    mesh = trimesh.Trimesh(small_vertices, small_faces, process=False)
    assert mesh.is_watertight
    radii = np.linalg.norm(small_vertices - np.array(SPHERE.center), axis=1)
    np.testing.assert_allclose(radii, SPHERE.radius, rtol=0.05)  # 500 faces: coarse but round


def test_decimation_leaves_a_mesh_under_budget_alone(sphere_surface):
    vertices, faces = sphere_surface
    same_vertices, same_faces = cleanup.decimate(vertices, faces, len(faces))
    assert same_vertices is vertices and same_faces is faces


def test_bad_cleanup_settings_are_refused(sphere_surface):
    with pytest.raises(JokerError, match="face budget"):
        cleanup.decimate(*sphere_surface, face_budget=10)
    with pytest.raises(JokerError, match="component fraction"):
        cleanup.keep_large_components(*sphere_surface, min_fraction=0.0)


def test_taubin_smoothing_takes_out_noise_and_keeps_the_volume(sphere_surface):
    vertices, faces = sphere_surface
    centre = np.asarray(SPHERE.center)
    noisy = vertices + np.random.default_rng(0).normal(0, 0.002, vertices.shape)
    smoothed = cleanup.smooth(noisy, faces, 10)
    roughness = [np.std(np.linalg.norm(v - centre, axis=1)) for v in (noisy, smoothed)]
    assert roughness[1] < 0.5 * roughness[0]
    volume = [cleanup.signed_volume(v, faces) for v in (vertices, smoothed)]
    assert volume[1] == pytest.approx(volume[0], rel=0.02)
    np.testing.assert_array_equal(cleanup.smooth(noisy, faces, 0), noisy)


def test_shading_normals_ignore_creases_a_cell_wide(sphere_surface):
    vertices, faces = sphere_surface
    radial = vertices - np.asarray(SPHERE.center)
    radial /= np.linalg.norm(radial, axis=1, keepdims=True)
    bumpy = vertices + radial * np.random.default_rng(1).normal(0, 0.002, (len(vertices), 1))
    raw = trimesh.Trimesh(bumpy, faces, process=False).vertex_normals
    shading = shading_normals(bumpy, faces, 10)
    error = [np.degrees(np.arccos(np.clip((n * radial).sum(1), -1, 1))).mean() for n in (raw, shading)]
    assert error[1] < 0.4 * error[0]
    np.testing.assert_allclose(np.linalg.norm(shading, axis=1), 1.0, atol=1e-6)

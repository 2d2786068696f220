"""Registration against fields whose surface is known: the fitted rig lands on it, keeps
its faces the right way round and never jumps across a gap onto another surface."""

from __future__ import annotations

import numpy as np
import torch
import trimesh

from joker.box import Box
from analytic_fields import SURFACE_LEVEL, density_from_sdf, ellipsoid_sdf
from joker.mesh.extract import marching_cubes, sample_density_grid
from joker.mesh.register import flipped_faces, register_head
from joker.mesh.surface import Surface


def _sphere_rig(radius: float = 0.05, subdivisions: int = 4):
    sphere = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return np.asarray(sphere.vertices), np.asarray(sphere.faces)


def _mesh(density, radius: float = 0.09, resolution: int = 96):
    box = Box.around((0.0, 0.0, 0.0), radius)
    grid = sample_density_grid(density, box, resolution, iso_level=SURFACE_LEVEL, coarse_stride=1)
    return marching_cubes(grid, SURFACE_LEVEL, box)


def test_closest_points_match_trimesh_on_a_random_mesh():
    rng = np.random.default_rng(0)
    vertices, faces = _sphere_rig(0.05, 2)
    points = rng.normal(size=(300, 3)) * 0.04
    found, distance = Surface(vertices, faces, candidates=len(faces)).closest(points)
    expected = trimesh.Trimesh(vertices, faces, process=False)
    # Brute force over every face: the exact distance to the surface.
    exact = np.array([np.linalg.norm(p - trimesh.triangles.closest_point(expected.triangles, np.repeat(p[None], len(faces), 0)), axis=1).min()
                      for p in points])
    np.testing.assert_allclose(distance, exact, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(found - points, axis=1), distance, atol=1e-9)


def test_a_sphere_rig_lands_on_an_ellipsoid_surface():
    radii = (0.056, 0.05, 0.045)  # up to 6 mm out and 5 mm in from the rig
    def density(points):
        return density_from_sdf(ellipsoid_sdf(points, (0.0, 0.0, 0.0), radii), edge=0.002)
    rig, faces = _sphere_rig()
    mesh_vertices, mesh_faces = _mesh(density)
    fitted = register_head(rig, faces, np.ones(len(rig), bool), mesh_vertices, mesh_faces, density, SURFACE_LEVEL)
    on_ellipsoid = np.abs(ellipsoid_sdf(torch.from_numpy(fitted.vertices), (0, 0, 0), radii).numpy())
    before = np.abs(ellipsoid_sdf(torch.from_numpy(rig), (0, 0, 0), radii).numpy())
    assert before.mean() > 1.5e-3
    assert on_ellipsoid.mean() < 2e-4 and np.percentile(on_ellipsoid, 95) < 5e-4
    assert fitted.figures["registered_to_mesh_mean_m"] < 5e-4
    assert fitted.figures["flipped_faces"] == 0 and fitted.figures["surface_found_share"] == 1.0


def test_a_vertex_never_jumps_across_a_gap_onto_the_other_surface():
    """The rig's own surface shrank 3 mm; a second body lies 1.5 mm off its +x side (a lip
    over an open mouth). Closest points alone would pull that side onto the second body."""
    other_centre = (0.05 + 0.0015 + 0.02, 0.0, 0.0)
    def density(points):
        own = ellipsoid_sdf(points, (0.0, 0.0, 0.0), (0.047,) * 3)
        other = ellipsoid_sdf(points, other_centre, (0.02,) * 3)
        return density_from_sdf(torch.minimum(own, other), edge=0.001)
    rig, faces = _sphere_rig()
    mesh_vertices, mesh_faces = _mesh(density, resolution=128)
    fitted = register_head(rig, faces, np.ones(len(rig), bool), mesh_vertices, mesh_faces, density, SURFACE_LEVEL)
    radius = np.linalg.norm(fitted.vertices, axis=1)
    assert np.abs(radius - 0.047).max() < 1e-3
    facing = rig[:, 0] > 0.045  # the side that faces the other body
    assert np.abs(radius[facing] - 0.047).max() < 1e-3
    assert flipped_faces(rig, fitted.vertices, faces) == 0


def test_only_the_moving_vertices_move():
    radii = (0.052, 0.052, 0.052)
    def density(points):
        return density_from_sdf(ellipsoid_sdf(points, (0.0, 0.0, 0.0), radii), edge=0.002)
    rig, faces = _sphere_rig(subdivisions=3)
    # Two bodies: the fitted sphere and an inner one (an eyeball) that must stay put.
    inner, inner_faces = _sphere_rig(0.01, 2)
    vertices, all_faces = np.concatenate([rig, inner]), np.concatenate([faces, inner_faces + len(rig)])
    moving = np.r_[np.ones(len(rig), bool), np.zeros(len(inner), bool)]
    mesh_vertices, mesh_faces = _mesh(density)
    fitted = register_head(vertices, all_faces, moving, mesh_vertices, mesh_faces, density, SURFACE_LEVEL)
    np.testing.assert_array_equal(fitted.vertices[~moving], inner)
    assert np.abs(np.linalg.norm(fitted.vertices[moving], axis=1) - 0.052).max() < 5e-4

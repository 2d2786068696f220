"""UV atlas and texture bake: coverage, no overlaps, and the baked colours read back right."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from joker.mesh.bake import bake_texture, fill_empty_texels, rasterize_uv
from texture_lookup import sample_texture
from joker.mesh.unwrap import UVMesh, unwrap
from joker_core.errors import JokerError

from .support import position_color


def random_surface_points(mesh, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(world points, their UVs) at uniformly random barycentric points of random faces."""
    rng = np.random.default_rng(seed)
    faces = mesh.faces[rng.integers(len(mesh.faces), size=count)]
    weights = rng.dirichlet(np.ones(3), size=count)
    return (np.einsum("nk,nkd->nd", weights, mesh.vertices[faces]),
            np.einsum("nk,nkd->nd", weights, mesh.uvs[faces]))


def expected_color(points: np.ndarray) -> np.ndarray:
    return position_color(torch.from_numpy(points)).numpy()


def test_half_square_rasterises_to_the_texel_centres_it_contains():
    size = 16
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    hits = rasterize_uv(uvs, np.array([[0, 1, 2]]), size, gutter=0)
    rows, columns = np.divmod(hits.texel, size)
    centre_u, centre_v = (columns + 0.5) / size, 1.0 - (rows + 0.5) / size
    centres = (np.arange(size) + 0.5) / size
    expected = (centres[:, None] + centres[None, :] <= 1.0).sum()
    assert len(hits.texel) == expected
    np.testing.assert_allclose(hits.barycentric @ uvs, np.stack([centre_u, centre_v], axis=1), atol=1e-12)


def test_the_gutter_ring_extends_the_nearest_triangle_to_its_texels():
    size = 16
    uvs = np.array([[0.1, 0.1], [0.7, 0.1], [0.1, 0.7]])
    inside = rasterize_uv(uvs, np.array([[0, 1, 2]]), size, gutter=0)
    hits = rasterize_uv(uvs, np.array([[0, 1, 2]]), size, gutter=1.5)
    ring = ~np.isin(hits.texel, inside.texel)
    assert 20 < ring.sum() < 60  # one to two texels deep along the three edges
    rows, columns = np.divmod(hits.texel, size)
    centres = np.stack([(columns + 0.5) / size, 1.0 - (rows + 0.5) / size], axis=1)
    np.testing.assert_allclose(hits.barycentric @ uvs, centres, atol=1e-12)  # the plane, extended
    assert (hits.barycentric[ring] < 0).any(axis=1).all()
    on_face = hits.on_face()
    assert (on_face >= 0).all() and np.allclose(on_face.sum(axis=1), 1.0)


def test_two_triangles_covering_the_square_hit_every_texel_once():
    uvs = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    hits = rasterize_uv(uvs, np.array([[0, 1, 2], [0, 2, 3]]), 32)
    np.testing.assert_array_equal(hits.texel, np.arange(32 * 32))


def test_atlas_uvs_are_in_range_and_seams_split_vertices(sphere_mesh):
    assert sphere_mesh.uvs.min() >= 0.0 and sphere_mesh.uvs.max() <= 1.0
    assert len(sphere_mesh.vertices) > len(sphere_mesh.faces) / 2 + 2  # a closed mesh has F/2 + 2


def test_atlas_charts_do_not_overlap(sphere_mesh):
    size = 1024
    hits = rasterize_uv(sphere_mesh.uvs, sphere_mesh.faces, size)
    owner = np.full(size * size, -1)
    owner[hits.texel] = hits.face
    # The texel under each face's UV centroid, where its centre lies well inside that face,
    # must belong to that face; a chart laid over another would claim it.
    corners = sphere_mesh.uvs[sphere_mesh.faces]
    centroid = corners.mean(axis=1)
    column, row = np.floor(centroid[:, 0] * size), np.floor((1 - centroid[:, 1]) * size)
    centre = np.stack([(column + 0.5) / size, 1 - (row + 0.5) / size], axis=1)
    weights = np.linalg.solve(np.concatenate([corners, np.ones((len(corners), 3, 1))], axis=2).transpose(0, 2, 1),
                              np.concatenate([centre, np.ones((len(centre), 1))], axis=1))
    well_inside = weights.min(axis=1) > 0.05
    assert well_inside.mean() > 0.5
    claimed_by = owner[(row * size + column).astype(np.int64)]
    np.testing.assert_array_equal(claimed_by[well_inside], np.flatnonzero(well_inside))


def test_baked_texture_reproduces_the_colour_field(sphere_mesh):
    points, uvs = random_surface_points(sphere_mesh, 5000)
    error = np.abs(sample_texture(sphere_mesh.texture, uvs) / 255.0 - expected_color(points))
    assert np.median(error) < 2 / 255
    assert error.max() < 0.03


def test_seams_show_no_dark_lines(sphere_mesh):
    """Bilinear lookups on chart borders read chart colours, not background."""
    edges = np.sort(sphere_mesh.faces[:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    border = unique[counts == 1]  # edges with one face in the split mesh lie on chart borders
    assert len(border) > 20
    points = sphere_mesh.vertices[border].mean(axis=1)
    uvs = sphere_mesh.uvs[border].mean(axis=1)
    error = np.abs(sample_texture(sphere_mesh.texture, uvs) / 255.0 - expected_color(points))
    assert error.max() < 0.05


def test_empty_texels_take_the_nearest_chart_colour():
    image = np.zeros((4, 6, 3), np.float32)
    covered = np.zeros((4, 6), bool)
    image[1, 0], covered[1, 0] = (1, 0, 0), True
    image[2, 5], covered[2, 5] = (0, 0, 1), True
    filled = fill_empty_texels(image, covered)
    np.testing.assert_array_equal(filled[:, :2], np.broadcast_to((1, 0, 0), (4, 2, 3)))
    np.testing.assert_array_equal(filled[:, 4:], np.broadcast_to((0, 0, 1), (4, 2, 3)))


def test_bilinear_lookup_interpolates_between_texel_centres():
    texture = np.array([[[0], [100]], [[200], [255]]], np.uint8)  # row 0 is the top (v = 1)
    uvs = np.array([[0.25, 0.75], [0.75, 0.25], [0.5, 0.75], [0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(sample_texture(texture, uvs)[:, 0], [0, 255, 50, 138.75, 0])


def test_nan_colour_is_refused():
    mesh = UVMesh(vertices=np.eye(3), faces=np.array([[0, 1, 2]]), uvs=np.array([[0, 0], [1, 0], [0, 1.0]]),
                  source_vertex=np.arange(3), chart_count=1)
    with pytest.raises(JokerError, match="color field returned NaN"):
        bake_texture(mesh, lambda p: torch.full_like(p, float("nan")), 16)


def test_unwrap_is_deterministic():
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    first, second = (unwrap(sphere.vertices, sphere.faces, 256) for _ in range(2))
    np.testing.assert_array_equal(first.uvs, second.uvs)
    np.testing.assert_array_equal(first.faces, second.faces)
    np.testing.assert_array_equal(first.vertices, sphere.vertices[first.source_vertex])


@pytest.mark.parametrize("size", [32, 10_000])
def test_unwrap_refuses_bad_texture_sizes(size):
    with pytest.raises(JokerError, match="texture size"):
        unwrap(np.eye(3), np.array([[0, 1, 2]]), size)

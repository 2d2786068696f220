"""The head's UV charts: few, the face in one piece, flattenings that keep angles and never fold."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import Delaunay

from joker.mesh import build_textured_mesh
from analytic_fields import HEAD_BOX, HeadLikeField
from joker.mesh.charts import flatten, lscm, regions
from joker.mesh.cleanup import face_components
from joker.mesh.unwrap import unwrap

from .support import SMALL

MAX_CHARTS = 64


@pytest.fixture(scope="module")
def head_mesh():
    field = HeadLikeField()
    return build_textured_mesh(field.density, field.color, HEAD_BOX, SMALL)


def grid_disc(rings: int = 8, bend: float = 0.0):
    """A triangulated unit disc in the z = 0 plane, or bent into a cap by `bend`."""
    points = [np.zeros(3)]
    for ring in range(1, rings + 1):
        count = 6 * ring
        angles = np.arange(count) * 2 * np.pi / count
        radius = ring / rings
        points += [np.array([radius * np.cos(a), radius * np.sin(a), -bend * radius ** 2]) for a in angles]
    points = np.array(points)
    return points, Delaunay(points[:, :2]).simplices


def test_lscm_of_a_flat_disc_is_a_similarity():
    points, faces = grid_disc()
    uv = lscm(points, faces)
    distances_3d = np.linalg.norm(points[faces[:, 0]] - points[faces[:, 1]], axis=1)
    distances_uv = np.linalg.norm(uv[faces[:, 0]] - uv[faces[:, 1]], axis=1)
    ratio = distances_uv / distances_3d
    np.testing.assert_allclose(ratio, ratio.mean(), rtol=1e-6)


def test_a_deep_cap_flattens_without_folds():
    points, faces = grid_disc(rings=10, bend=1.5)
    corners, folded = flatten(points, faces)
    assert not folded.any()
    signed = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert (signed > 0).all()


def test_the_head_has_few_charts(head_mesh):
    charts = face_components(len(head_mesh.vertices), head_mesh.faces).max() + 1
    assert charts <= MAX_CHARTS


def test_the_face_is_one_chart_and_its_seams_lie_behind_it(head_mesh):
    centre = np.asarray(HEAD_BOX.center)
    chart = face_components(len(head_mesh.vertices), head_mesh.faces)
    offset = head_mesh.vertices[head_mesh.faces].mean(axis=1) - centre
    azimuth = np.degrees(np.arctan2(offset[:, 0], offset[:, 2]))
    elevation = np.degrees(np.arctan2(offset[:, 1], np.hypot(offset[:, 0], offset[:, 2])))
    front = (np.abs(azimuth) < 80) & (np.abs(elevation) < 35)  # the face, ear to ear
    assert front.sum() > 0.15 * len(front)
    corners = head_mesh.vertices[head_mesh.faces]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    main = np.bincount(chart[front], weights=area[front]).argmax()
    # All of it but slivers of no visible size (xatlas charts faces of zero UV area alone).
    assert area[front & (chart != main)].sum() < 1e-4 * area[front].sum()


def test_regions_follow_the_head_frame():
    centre = np.zeros(3)
    points = np.array([[0, 0, 1], [0, 1, 0.1], [0, 0, -1], [0, -1, 0.2], [0, -1, -0.2]], float)
    faces = np.arange(len(points))[:, None].repeat(3, axis=1)  # one degenerate face per point
    np.testing.assert_array_equal(regions(points, faces, centre), [0, 1, 2, 3, 4])


def test_head_unwrap_is_deterministic(head_mesh):
    vertices, faces = head_mesh.vertices, head_mesh.faces
    first, second = (unwrap(vertices, faces, 256, centre=np.zeros(3)) for _ in range(2))
    np.testing.assert_array_equal(first.uvs, second.uvs)
    np.testing.assert_array_equal(first.faces, second.faces)

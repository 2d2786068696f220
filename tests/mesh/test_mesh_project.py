"""Texture from pictures: texels take what the views show where they see the surface, and
the membrane fill of those colours where no view looks (never the baked colour: the back's
ghost of the face)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from joker.mesh.bake import rasterize_uv
from joker.mesh.project import project_views
from joker_core.cameras import ViewRig
from joker_core.errors import JokerError

from .support import SPHERE, position_color, true_views

GREY = 128
RIG = ViewRig(SPHERE.center, 0.5, 40.0, 128)


def texel_points(mesh):
    """(texel indices, their surface points) of the mesh's atlas."""
    hits = rasterize_uv(mesh.uvs, mesh.faces, mesh.texture.shape[0])
    return hits.texel, np.einsum("nk,nkd->nd", hits.barycentric, mesh.vertices[mesh.faces[hits.face]])


def test_views_all_around_give_the_true_colours(sphere_mesh):
    grey = dataclasses.replace(sphere_mesh, texture=np.full_like(sphere_mesh.texture, GREY))
    cameras = [RIG.camera(azimuth, elevation) for azimuth in (0, 120, 240) for elevation in (-45, 45)]
    projected = project_views(grey, cameras, true_views(grey, cameras))
    texel, points = texel_points(projected)
    error = np.abs(projected.texture.reshape(-1, 3)[texel] / 255.0 - position_color(torch.from_numpy(points)).numpy())
    assert np.median(error) < 3 / 255
    assert np.percentile(error, 90) < 0.05  # the rest: seen only at grazing angles, part grey


def test_a_single_view_colours_its_side_and_the_fill_continues_it_behind(sphere_mesh):
    ghost = dataclasses.replace(sphere_mesh, texture=np.full_like(sphere_mesh.texture, (255, 0, 255)))
    camera = RIG.camera(0.0, 0.0)  # looks at the sphere from +z
    projected = project_views(ghost, [camera], true_views(ghost, [camera]))
    texel, points = texel_points(projected)
    colours = projected.texture.reshape(-1, 3)[texel].astype(int)
    facing = (points - np.asarray(SPHERE.center))[:, 2] / SPHERE.radius
    behind, front = facing < -0.1, facing > 0.9
    expected = position_color(torch.from_numpy(points[front])).numpy() * 255
    assert np.median(np.abs(colours[front] - expected)) < 5
    # Behind (the camera cannot see through the sphere): no trace of the baked magenta; the
    # fill stays within the seen colours and carries on their left-to-right ramp (red ~ x).
    seen = colours[facing > 0.2]
    assert (colours[behind] >= seen.min(0) - 2).all() and (colours[behind] <= seen.max(0) + 2).all()
    assert np.corrcoef(points[behind, 0], colours[behind, 0])[0, 1] > 0.8


def test_images_must_match_the_cameras(sphere_mesh):
    with pytest.raises(JokerError, match="one RGB image"):
        project_views(sphere_mesh, [RIG.camera(0, 0)], torch.zeros(2, 3, 8, 8))

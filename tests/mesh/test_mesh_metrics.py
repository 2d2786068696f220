"""The mesh's own fidelity figures: SSIM as skimage computes it, a known texture shift found,
seams measured against neighbouring pixels within a chart."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from joker.generation.mesh_metrics import psnr, seam_differences, ssim, texel_seam_differences
from joker.generation.turntable import render_unlit
from joker.mesh.bake import rasterize_uv
from joker.mesh.cleanup import face_components
from joker_core.cameras import ViewRig

from joker.mesh import build_textured_mesh

from .support import SMALL, SPHERE, SPHERE_BOX, position_color, true_views

RIG = ViewRig(SPHERE.center, 0.5, 40.0, 96)
CAMERAS = [RIG.camera(azimuth, elevation) for azimuth, elevation in ((0, 0), (100, 20), (200, -15), (290, 5))]


def test_ssim_matches_skimage():
    generator = np.random.default_rng(3)
    a = generator.random((2, 3, 40, 50))
    b = np.clip(a + generator.normal(0, 0.1, a.shape), 0, 1)
    expected = np.mean([structural_similarity(x, y, channel_axis=0, data_range=1.0, gaussian_weights=True,
                                              sigma=1.5, use_sample_covariance=False) for x, y in zip(a, b)])
    assert ssim(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, abs=1e-6)
    assert ssim(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(1.0)


def test_mesh_render_finds_a_known_texture_shift(sphere_mesh):
    expected = true_views(sphere_mesh, CAMERAS)
    faithful = render_unlit(sphere_mesh, CAMERAS)
    shifted = dataclasses.replace(sphere_mesh, texture=np.roll(sphere_mesh.texture, 12, axis=1))
    moved = render_unlit(shifted, CAMERAS)
    assert psnr(faithful, expected) > 33.0
    assert psnr(moved, expected) < psnr(faithful, expected) - 6.0
    assert ssim(moved, expected) < ssim(faithful, expected) - 0.01


def test_seam_difference_sees_a_texture_that_breaks_at_the_seams(sphere_mesh):
    seams = seam_differences(sphere_mesh, CAMERAS)
    across, within = seams["seam"], seams["neighbour"]
    assert across < 2 * within  # a smooth colour field baked right: seams hardly show
    assert seams["near_seam"] < 2 * within
    # Scramble the texture per chart (a constant colour each): every seam becomes a step.
    size = sphere_mesh.texture.shape[0]
    hits = rasterize_uv(sphere_mesh.uvs, sphere_mesh.faces, size, gutter=0)
    chart = face_components(len(sphere_mesh.vertices), sphere_mesh.faces)[hits.face]
    colours = np.random.default_rng(0).integers(0, 256, (chart.max() + 1, 3), dtype=np.uint8)
    texture = sphere_mesh.texture.reshape(-1, 3).copy()
    texture[hits.texel] = colours[chart]
    broken = dataclasses.replace(sphere_mesh, texture=texture.reshape(sphere_mesh.texture.shape))
    broken_seams = seam_differences(broken, CAMERAS, true_views(sphere_mesh, CAMERAS))
    assert broken_seams["seam"] > 5 * broken_seams["neighbour"]
    broken_texels = texel_seam_differences(broken)
    assert broken_texels["texel_seam"] > 20 * broken_texels["texel_neighbour"]
    assert broken_seams["seam"] > 5 * broken_seams["near_seam"]  # constant per chart: nothing changes beside a seam
    assert broken_seams["reference_seam"] < 2 * broken_seams["reference_neighbour"]  # the truth has no seams


def test_the_texture_gutter_takes_the_jump_out_of_the_seams(sphere_mesh):
    """Both sides of a seam read the colour of the same surface point once the texels just
    outside each chart hold its extended surface; copying the nearest chart texel there
    (no gutter) leaves a jump of about half a texel's change."""
    with_gutter = texel_seam_differences(sphere_mesh)
    without = texel_seam_differences(build_textured_mesh(SPHERE.density, position_color, SPHERE_BOX,
                                                         dataclasses.replace(SMALL, texture_gutter=0)))
    assert with_gutter["texel_seam"] <= with_gutter["texel_neighbour"]
    assert without["texel_seam"] > 2 * with_gutter["texel_seam"]

import math

import numpy as np
import torch
import trimesh

from joker.distill.losses import mask_loss, psnr, ssim, sparsity
from joker.prior.base import Condition, NoiseLevels
from joker.prior.oracle import EllipsoidOracle, MeshOracle
from joker_core.cameras import ViewRig

CONDITION = Condition(torch.zeros(1, 3, 8, 8))


def test_oracle_renders_the_ellipsoid_and_its_normal_map():
    oracle = EllipsoidOracle(radii=(0.1, 0.1, 0.1))
    front = ViewRig(distance=0.6, fov_deg=30, size=33).camera(0, 0)
    images, normal_maps = oracle.render([front])
    assert images.shape == normal_maps.shape == (1, 3, 33, 33)
    assert torch.allclose(normal_maps[0, :, 16, 16] * 255, torch.tensor([128.0, 128.0, 255.0]))
    assert (normal_maps[0, :, 0, 0] == 0).all()  # background
    assert torch.allclose(images[0, :, 0, 0], torch.tensor(oracle.background))
    # The silhouette of a sphere of radius 0.1 seen from 0.6 m subtends asin(0.1 / 0.6).
    focal = 16.5 / math.tan(math.radians(15))
    expected_width = 2 * focal * math.tan(math.asin(0.1 / 0.6))
    width = (normal_maps[0].amax(0)[16] > 0).sum().item()
    assert abs(width - expected_width) <= 2


def test_oracle_counts_evaluations_like_a_prior():
    oracle = EllipsoidOracle(levels=NoiseLevels(100, 1000))
    views = oracle.views(ViewRig(size=16).grid(3, 1))
    images = oracle.render(views.cameras)[0]
    noisy = oracle.noise(images, 99, torch.Generator().manual_seed(0))
    assert (noisy.sample - (images * 2 - 1)).abs().mean() < 0.1  # t=1 barely noises
    assert torch.equal(oracle.predict_clean(noisy, views, CONDITION), images)
    oracle.denoise(oracle.noise(images, 60), views, CONDITION, steps=40)
    assert oracle.evaluations.by_kind == {"predict_clean": 3, "denoise": 3 * 40}
    assert [(c.kind, c.level, c.steps) for c in oracle.calls] == [("predict_clean", 99, 1), ("denoise", 60, 40)]


def test_photometric_losses_and_psnr():
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 16, 16, generator=generator)
    assert ssim(a, a).item() > 0.999
    assert ssim(a, torch.rand(2, 3, 16, 16, generator=generator)).item() < 0.2
    assert abs(psnr(a, (a + 0.1)) - 20.0) < 1e-3


def test_sparsity_prefers_empty_and_mask_loss_prefers_the_silhouette():
    assert sparsity(torch.zeros(10)) < sparsity(torch.full((10,), 0.5)) < sparsity(torch.ones(10))
    mask = torch.tensor([1.0, 0.0])
    assert mask_loss(torch.tensor([0.99, 0.01]), mask) < 0.05 < mask_loss(torch.tensor([0.01, 0.99]), mask)


def test_mesh_oracle_agrees_with_the_analytic_oracle_on_a_sphere():
    analytic = EllipsoidOracle(radii=(0.1, 0.1, 0.1))
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=0.1)
    vertices = np.asarray(sphere.vertices)
    colors = analytic.surface_color(vertices, vertices / 0.1)
    mesh = MeshOracle(vertices=torch.tensor(vertices), faces=torch.tensor(np.asarray(sphere.faces)),
                      colors=torch.tensor(colors), background=analytic.background)
    cameras = ViewRig(size=48).grid(2, 2)
    (images, normal_maps), (mesh_images, mesh_normal_maps) = analytic.render(cameras), mesh.render(cameras)
    assert psnr(mesh_images, images) > 40.0
    masks, mesh_masks = normal_maps.amax(1) > 0, mesh_normal_maps.amax(1) > 0
    assert (masks & mesh_masks).sum() / (masks | mesh_masks).sum() > 0.99
    both = masks & mesh_masks
    assert (mesh_normal_maps - normal_maps).abs().amax(1)[both].mean() < 0.01

import math

import numpy as np
import pytest
import torch

from joker.distill.field import Box, FieldConfig, RadianceField
from joker.distill.occupancy import OccupancyGrid
from joker.distill.rays import CameraSet, Pixels, Rays
from joker.distill.render import box_interval, render_images, render_rays
from joker_core.cameras import ViewRig
from joker_core.errors import JokerError


def constant_field(box=Box()) -> RadianceField:
    """Density softplus(0) = ln 2 everywhere in the box, colour 0.5: no blob, zero decoder."""
    torch.manual_seed(0)
    field = RadianceField(box, FieldConfig(blob_density=0.0))
    torch.nn.init.zeros_(field.decoder[-1].weight)
    torch.nn.init.zeros_(field.decoder[-1].bias)
    return field


def test_rays_pass_through_the_points_the_camera_projects_to_those_pixels():
    rig = ViewRig(center=(0.0, 0.02, 0.0), distance=0.5, fov_deg=30, size=64)
    cameras = rig.grid(3, 2)
    points = np.random.default_rng(0).uniform(-0.1, 0.1, (len(cameras), 3))
    columns, rows = [], []
    for camera, point in zip(cameras, points):
        (u, v), = camera.project(point[None])[0]
        columns.append(u), rows.append(v)
    camera_set = CameraSet(cameras)
    # Rays go through pixel centres (+0.5): ask for the "pixel" whose centre is (u, v).
    view = torch.arange(len(cameras))
    rays = camera_set.rays(Pixels(view, torch.tensor(rows) - 0.5, torch.tensor(columns) - 0.5), 64)
    to_point = torch.tensor(points, dtype=torch.float32) - rays.origins
    along = (to_point * rays.directions).sum(-1, keepdim=True)
    miss = (to_point - along * rays.directions).norm(dim=-1)
    assert miss.max() < 1e-5
    assert torch.allclose(rays.directions.norm(dim=-1), torch.ones(len(cameras)))


def test_patches_stay_inside_the_image_and_are_square():
    cameras = CameraSet(ViewRig(size=40).grid(2, 2))
    pixels = cameras.patch_pixels(5, 16, 20, torch.Generator().manual_seed(1))
    assert len(pixels) == 5 * 16 * 16
    assert pixels.row.max() < 20 and pixels.col.max() < 20 and pixels.row.min() >= 0
    rows = pixels.row.reshape(5, 16, 16)
    assert (rows[:, 1:, :] - rows[:, :-1, :] == 1).all() and (rows[:, :, 1:] == rows[:, :, :1]).all()


def test_cameras_of_different_sizes_are_refused():
    with pytest.raises(JokerError, match="same size"):
        CameraSet([ViewRig(size=32).camera(0, 0), ViewRig(size=64).camera(0, 0)])


def test_box_interval_of_a_ray_through_the_centre_and_of_a_miss():
    origins = torch.tensor([[0.0, 0.0, 3.0], [0.0, 5.0, 3.0]])
    directions = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0]])
    near, far = box_interval(origins, directions)
    assert torch.allclose(near[0], torch.tensor(2.0)) and torch.allclose(far[0], torch.tensor(4.0))
    assert near[1] == far[1]


def test_compositing_matches_the_closed_form_for_a_constant_medium():
    box = Box(center=(0.0, 0.1, 0.0), half_size=0.2)
    field = constant_field(box)
    rays = Rays(torch.tensor([[0.0, 0.1, 1.0], [0.0, 0.9, 1.0]]), torch.tensor([[0.0, 0.0, -1.0]] * 2))
    out = render_rays(field, rays, samples=32)
    expected_opacity = 1 - math.exp(-math.log(2) * 2.0)  # chord of 2 box units
    assert out.opacity[0].item() == pytest.approx(expected_opacity, abs=1e-5)
    assert out.opacity[1].item() == pytest.approx(0.0, abs=1e-6)  # passes above the box
    background = field.background(rays.directions).detach()
    expected_rgb = expected_opacity * 0.5 + (1 - expected_opacity) * background[0]
    assert torch.allclose(out.rgb[0].detach(), expected_rgb, atol=1e-5)
    assert torch.allclose(out.rgb[1].detach(), background[1], atol=1e-6)


def test_density_and_colour_callables_for_meshing():
    box = Box(center=(0.0, 0.0, 0.05), half_size=0.15)
    torch.manual_seed(0)
    field = RadianceField(box)
    points = np.array([[0.0, 0.0, 0.05], [0.14, 0.14, 0.19], [0.0, 0.0, 0.3]])
    density, color = field.density(points), field.color(points)
    assert density.shape == (3,) and color.shape == (3, 3)
    assert density[0] > 10 * density[1] > 0  # the blob around the centre
    assert density[2] == 0  # outside the box
    assert ((color >= 0) & (color <= 1)).all()
    assert np.allclose(box.minimum, [-0.15, -0.15, -0.1]) and np.allclose(box.maximum, [0.15, 0.15, 0.2])


def test_occupancy_grid_skips_only_empty_space():
    torch.manual_seed(0)
    field = RadianceField(Box(), FieldConfig(blob_radius=0.5))
    grid = OccupancyGrid(resolution=16)
    grid.update(field, torch.Generator().manual_seed(0))
    assert grid.mask[8, 8, 8] and not grid.mask[0, 0, 0]
    assert 0.02 < grid.occupied_fraction < 0.5
    cameras = CameraSet(ViewRig(size=24).grid(2, 1))
    dense = render_images(field, cameras, [0, 1], 24, samples=32)
    skipping = render_images(field, cameras, [0, 1], 24, samples=32, occupancy=grid)
    assert (dense - skipping).abs().max() < 0.02

import math

import numpy as np
import pytest
import torch

from joker.distill.field import Box, FieldConfig, HashGrid, HashGridConfig, RadianceField
from joker.distill.occupancy import OccupancyGrid
from joker.distill.rays import CameraSet, Pixels, Rays
from joker.distill.render import BOX_DIAGONAL, box_interval, exclusive_sum_along_rays, render_images, render_rays
from joker_core.cameras import ViewRig
from joker_core.errors import JokerError


def constant_field(box=Box()) -> RadianceField:
    """Density softplus(0) = ln 2 everywhere in the box, colour 0.5: no blob, zero decoder."""
    torch.manual_seed(0)
    field = RadianceField(box, FieldConfig(blob_density=0.0))
    torch.nn.init.zeros_(field.decoder[-1].weight)
    torch.nn.init.zeros_(field.decoder[-1].bias)
    return field


def test_the_hash_grid_is_tiny_cuda_nns_encoding():
    """Levels, dense and hashed indexing and trilinear weights as tcnn's grid.h computes them."""
    torch.manual_seed(0)
    grid = HashGrid(HashGridConfig(levels=3, features=2, log2_table=10, base_resolution=4, per_level_scale=3.0))
    # scale 4 * 3^l - 1 = 3, 11, 35; resolution ceil(scale) + 1; 4^3 = 64 cells fit a table, 12^3 do not
    assert grid.resolutions == [4, 12, 36] and grid.sizes == [64, 1024, 1024] and grid.dense == [True, False, False]
    vertex = torch.tensor([3, 7, 5])  # integer coordinates at level 1: unit x * 11 + 0.5 = vertex
    unit = (vertex - 0.5) / 11
    features = grid(unit[None] * 2 - 1)[0]
    hashed = (3 * 1 ^ 7 * 2654435761 ^ 5 * 805459861) & 0xFFFFFFFF  # tcnn's uint32 arithmetic
    assert torch.allclose(features[2:4], grid.table[64 + hashed % 1024], atol=1e-6)
    dense = grid.index(0, torch.tensor([1, 2, 3]))
    assert dense == 1 + 4 * 2 + 16 * 3
    halfway = ((vertex + torch.tensor([0.5, 0, 0]) - 0.5) / 11)
    neighbour = grid.table[64 + (4 * 1 ^ 7 * 2654435761 ^ 5 * 805459861) % 1024]
    assert torch.allclose(grid(halfway[None] * 2 - 1)[0, 2:4], (features[2:4] + neighbour) / 2, atol=1e-6)
    field = RadianceField(Box(), FieldConfig(hash_grid=HashGridConfig(levels=2, log2_table=8)))
    field.query_unit(torch.rand(64, 3) * 2 - 1)[0].sum().backward()
    assert field.encoding.table.grad.abs().sum() > 0 and field.grid_parameters() == [field.encoding.table]


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


def previous_compositing(field, rays, samples, generator=None):
    """render_rays as it was before nerfacc: strata over the chord, cumprod transmittance."""
    origins = field.box.to_unit(rays.origins)
    near, far = box_interval(origins, rays.directions)
    count = origins.shape[0]
    offsets = (torch.full((count, samples), 0.5) if generator is None
               else torch.rand((count, samples), generator=generator))
    step = (far - near) / samples
    t = near[:, None] + (torch.arange(samples) + offsets) * step[:, None]
    points = origins[:, None, :] + t[..., None] * rays.directions[:, None, :]
    density, color = field.query_unit(points.reshape(-1, 3))
    alpha = 1.0 - torch.exp(-density.reshape(count, samples) * step[:, None])
    transmittance = torch.cumprod(torch.cat([alpha.new_ones(count, 1), 1.0 - alpha[:, :-1] + 1e-10], 1), 1)
    weights = alpha * transmittance
    opacity = weights.sum(-1)
    rgb = (weights[..., None] * color.reshape(count, samples, 3)).sum(1)
    rgb = rgb + (1.0 - opacity[:, None]) * field.background(rays.directions)
    return rgb, opacity, (weights * t).sum(-1)


def some_rays(count=300, seed=0):
    cameras = CameraSet(ViewRig(size=32).grid(3, 2))
    pixels = cameras.patch_pixels(count // 16 + 1, 4, 32, torch.Generator().manual_seed(seed))
    return cameras.rays(pixels, 32)


@pytest.mark.parametrize("jitter", [False, True])
def test_nerfacc_compositing_equals_the_previous_compositing(jitter):
    torch.manual_seed(0)
    field = RadianceField(Box(), FieldConfig(blob_radius=0.7, blob_density=30.0))
    rays = some_rays()
    seed = lambda: torch.Generator().manual_seed(5) if jitter else None  # noqa: E731
    new = render_rays(field, rays, 48, seed())
    old = previous_compositing(field, rays, 48, seed())
    for ours, theirs in zip((new.rgb, new.opacity, new.depth), old):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    assert 0.3 < new.opacity.max() and new.opacity.min() < 0.99  # neither empty nor opaque everywhere
    # gradients flow through the packed scan as through the cumprod
    (new.rgb.sum() + new.depth.sum()).backward()
    assert field.encoding.planes[0].grad.abs().sum() > 0


def test_exclusive_sum_along_rays_restarts_at_every_ray():
    values = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    ray = torch.tensor([0, 0, 2, 2, 2, 3])
    assert exclusive_sum_along_rays(values, ray, 5).tolist() == [0.0, 1.0, 0.0, 3.0, 7.0, 0.0]


def test_occupancy_cuts_composited_samples_and_marching_fits_the_chord():
    torch.manual_seed(0)
    field = RadianceField(Box(), FieldConfig(blob_radius=0.5))
    rays = some_rays()
    grid = OccupancyGrid(resolution=16)
    grid.update(field, torch.Generator().manual_seed(0))
    dense = render_rays(field, rays, 64)
    skipping = render_rays(field, rays, 64, occupancy=grid)
    assert skipping.samples < 0.6 * dense.samples
    assert (dense.rgb - skipping.rgb).abs().max() < 0.02
    undilated = OccupancyGrid(resolution=16, dilate=False)
    undilated.update(field, torch.Generator().manual_seed(0))
    assert undilated.occupied_fraction < grid.occupied_fraction
    assert render_rays(field, rays, 64, occupancy=undilated).samples < skipping.samples
    marching = OccupancyGrid(resolution=16, march=True)  # never updated: every cell occupied
    marched = render_rays(field, rays, 64, occupancy=marching)
    origins = field.box.to_unit(rays.origins)
    near, far = box_interval(origins, rays.directions)
    expected = torch.ceil((far - near) / (BOX_DIAGONAL / 64)).sum().item()
    assert abs(marched.samples - expected) <= 2 and marched.samples < dense.samples
    assert (marched.rgb - dense.rgb).abs().max() < 0.02


def test_shared_patches_come_from_distinct_views_at_one_place():
    cameras = CameraSet(ViewRig(size=40).grid(3, 2))
    pixels = cameras.patch_pixels(4, 8, 40, torch.Generator().manual_seed(2), shared=True)
    views = pixels.view.reshape(4, 64)[:, 0]
    assert len(set(views.tolist())) == 4
    rows, cols = pixels.row.reshape(4, 64), pixels.col.reshape(4, 64)
    assert (rows == rows[:1]).all() and (cols == cols[:1]).all()
    more = cameras.patch_pixels(8, 8, 40, torch.Generator().manual_seed(2), shared=True)
    assert sorted(set(more.view.reshape(8, 64)[:6, 0].tolist())) == list(range(6))


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
def test_cuda_compositing_is_nerfaccs_and_equals_the_cpu():
    torch.manual_seed(0)
    field = RadianceField(Box(), FieldConfig(blob_radius=0.7, blob_density=30.0))
    rays = some_rays()
    cpu = render_rays(field, rays, 48)
    gpu = render_rays(field.cuda(), Rays(rays.origins.cuda(), rays.directions.cuda()), 48)
    for ours, theirs in zip((gpu.rgb, gpu.opacity, gpu.depth), (cpu.rgb, cpu.opacity, cpu.depth)):
        torch.testing.assert_close(ours.cpu(), theirs, atol=1e-5, rtol=1e-5)


@cuda
def test_nerfacc_estimator_skips_empty_space_on_cuda():
    from joker.distill.occupancy import NerfaccGrid, nerfacc_grid

    torch.manual_seed(0)
    field = RadianceField(Box(), FieldConfig(blob_radius=0.5)).cuda()
    grid = nerfacc_grid(torch.device("cuda"), 32, 0.01, 64)
    assert isinstance(grid, NerfaccGrid), "nerfacc's CUDA extension did not build"
    for _ in range(3):
        grid.update(field)
    assert 0.01 < grid.occupied_fraction < 0.6
    rays = some_rays()
    rays = Rays(rays.origins.cuda(), rays.directions.cuda())
    dense = render_rays(field, rays, 64)
    skipping = render_rays(field, rays, 64, occupancy=grid)
    assert skipping.samples < 0.6 * dense.samples
    assert (dense.rgb - skipping.rgb).abs().max() < 0.03

"""The rig's interior and free space as its depth maps see them, and the density losses on
them (rig_space.py)."""

import dataclasses

import numpy as np
import pytest
import torch

from joker.distill import distill
from joker.distill.field import Box, FieldConfig, RadianceField
from joker.distill.losses import LossWeights, free_loss, interior_loss
from joker.distill.rig_space import near_the_head, prefit_density, rig_cells, sample_cells, signed_depth
from joker.distill.rig_views import RigGeometry, RigSupervision, rig_views
from joker.prior.base import Condition, NoiseLevels
from joker.prior.oracle import EllipsoidOracle
from joker_core.cameras import ViewRig

from test_distiller import tiny_preset
from test_rig_views import RADII, ellipsoid_mesh

BOX = Box(half_size=0.16)
RESOLUTION = 32
MARGIN = 0.006


def ellipsoid_distance(unit_points: torch.Tensor) -> np.ndarray:
    """Approximate signed distance (m) of box-unit points to the oracle's ellipsoid."""
    world = unit_points.numpy() * BOX.half_size
    return (np.linalg.norm(world / RADII, axis=1) - 1.0) * min(RADII)


def cell_centres(cells: torch.Tensor) -> torch.Tensor:
    return (cells.nonzero().float() + 0.5) / cells.shape[0] * 2 - 1


@pytest.fixture(scope="module")
def ellipsoid_cells():
    cameras = RigSupervision(azimuths=6, elevations=(-40.0, 0.0, 40.0), size=48).cameras(ViewRig())
    return rig_cells([rig_views(*ellipsoid_mesh(), cameras)], BOX, MARGIN, RESOLUTION)


def test_interior_cells_lie_inside_the_rig_by_the_margin_and_fill_it(ellipsoid_cells):
    interior, _ = ellipsoid_cells
    depth = ellipsoid_distance(cell_centres(interior))
    pixel_slack = 0.003  # a 48 px view's pixel is ~2 mm at the head; its depth is the pixel's
    assert depth.max() < -MARGIN + pixel_slack
    everything = cell_centres(torch.ones_like(interior))
    deep = ellipsoid_distance(everything) < -(MARGIN + pixel_slack)
    assert interior.reshape(-1)[torch.from_numpy(deep)].float().mean() > 0.97


def test_free_cells_lie_outside_and_near_cells_hug_the_head(ellipsoid_cells):
    interior, free = ellipsoid_cells
    assert not (interior & free).any()
    distance = ellipsoid_distance(cell_centres(free))
    # The margin is along a view's ray: at a grazing ray, less of it is across the surface.
    assert distance.min() > 0 and np.median(distance) > MARGIN
    near = near_the_head(free, cells=2)
    cell = 2 * BOX.half_size / RESOLUTION
    near_distance = ellipsoid_distance(cell_centres(near))
    assert near.sum() < free.sum() and near_distance.max() < MARGIN + 3.5 * cell


@pytest.mark.parametrize("lined", [True, False])
def test_a_cavity_is_free_where_its_lining_faces_the_view(lined):
    """An ellipsoid with its front cut away, seen from the front. Wound inward, it is a
    lined cavity (as the demo head's mouth pouch lines an open mouth): the space in it is
    free. Wound outward, the view looks through a hole at the inside of the head (FLAME's
    open mouth or neck): that space is neither free nor interior."""
    vertices, faces = ellipsoid_mesh()
    front = vertices[:, 2] > 0.03
    bowl = faces[~front[faces].any(axis=1)]
    if lined:
        bowl = bowl[:, ::-1].copy()
    views = rig_views(vertices, bowl, [ViewRig(size=48).camera(0.0, 0.0)])
    assert views.facing[0, 24, 24] == lined and views.masks[0, 24, 24]  # the back of the bowl
    interior, free = rig_cells([views], BOX, MARGIN, RESOLUTION)
    centre_cell = tuple([RESOLUTION // 2] * 3)
    assert free[centre_cell] == lined and not interior[centre_cell]


@pytest.fixture(scope="module")
def ellipsoid_orbit():
    supervision = RigSupervision(azimuths=6, elevations=(-40.0, 0.0, 40.0), size=48)
    return supervision, [rig_views(*ellipsoid_mesh(), supervision.cameras(ViewRig()))]


def random_probes(count=4000, seed=1):
    points = torch.rand((count, 3), generator=torch.Generator().manual_seed(seed)) * 2 - 1
    return points, ellipsoid_distance(points)


def test_signed_depth_is_behind_the_surface_inside_and_in_front_outside(ellipsoid_orbit):
    _, views = ellipsoid_orbit
    points, truth = random_probes()
    depth = signed_depth(views, BOX, points).numpy()
    clear = np.abs(truth) > 0.003  # a 48 px pixel is ~2 mm at the head
    assert (np.sign(depth[clear]) == -np.sign(truth[clear])).mean() > 0.99
    inside = truth < -0.003
    # Along a ray the surface is never nearer than straight across: at least the distance.
    assert (depth[inside] >= -truth[inside] - 0.002).all()


def test_density_prefit_makes_the_rig_solid_and_its_outside_empty(ellipsoid_orbit):
    supervision, views = ellipsoid_orbit
    supervision = dataclasses.replace(supervision, prefit_steps=60, prefit_points=1024)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        field = RadianceField(BOX, FieldConfig(resolutions=(16, 64)))
    points, truth = random_probes()

    def density(where):
        with torch.no_grad():
            return field.query_unit(points[torch.from_numpy(where)])[0]

    deep, clear = truth < -0.01, truth > 0.01
    assert density(deep).median() < supervision.solid_density  # the blob alone is not solid
    prefit_density(field, views, supervision, (1e-2, 1e-2), torch.Generator().manual_seed(0))
    # Measured: median 111 inside (30 steps: 26), 95th percentile 3e-7 outside.
    assert density(deep).median() > supervision.solid_density
    assert density(clear).quantile(0.95) < 0.05 * supervision.solid_density


def test_samples_fall_in_their_cells():
    cells = torch.zeros((8, 8, 8), dtype=torch.bool)
    cells[1, 2, 3] = cells[6, 6, 0] = True
    points = sample_cells(cells.nonzero(), 500, torch.Generator().manual_seed(0), resolution=8)
    index = ((points + 1) / 2 * 8).floor().long()
    assert cells[index[:, 0], index[:, 1], index[:, 2]].all()
    assert len({tuple(i) for i in index.tolist()}) == 2


def test_volume_losses_cost_only_on_the_wrong_side():
    assert interior_loss(torch.tensor([60.0, 100.0]), 50.0) == 0
    assert interior_loss(torch.tensor([25.0, 50.0]), 50.0) == pytest.approx(0.25)
    assert free_loss(torch.zeros(3), 50.0) == 0
    assert free_loss(torch.tensor([5.0, 15.0]), 50.0) == pytest.approx(0.2)


def test_volume_losses_make_the_inside_solid_and_the_outside_empty():
    oracle = EllipsoidOracle(levels=NoiseLevels(100, 1000), radii=RADII)
    chosen = tiny_preset(iterations=80, interval=20, resolutions=((0, 32),))
    supervision = RigSupervision(rays=256, azimuths=6, size=32, space_points=1024, space_margin=MARGIN)
    rigged = dataclasses.replace(chosen, rig=supervision,
                                 losses=LossWeights(l1=1.0, sparsity=1e-4, mask=0.3, depth=1.0))
    views = oracle.views(chosen.views.cameras())
    rig = RigGeometry(rig_views(*ellipsoid_mesh(), views.cameras), rig_views(*ellipsoid_mesh(), supervision.cameras(ViewRig())))
    with_volume = dataclasses.replace(rigged, losses=dataclasses.replace(rigged.losses, interior=3.0, free=3.0))
    interior, free = rig_cells([rig.training, rig.orbit], BOX, MARGIN)
    probes = {name: cell_centres(cells) for name, cells in (("interior", interior), ("free", near_the_head(free)))}

    def densities(preset):
        result = distill(oracle, views, Condition(torch.zeros(1, 3, 8, 8)), preset, rig=rig)
        with torch.no_grad():
            return {name: result.field.query_unit(points)[0] for name, points in probes.items()}, result.losses_used

    (plain, plain_losses), (shaped, shaped_losses) = densities(rigged), densities(with_volume)
    assert "interior" not in plain_losses and {"interior", "free"} <= set(shaped_losses)
    # Measured: interior 11.5 -> 104, free 0.93 -> 0.25.
    assert shaped["interior"].mean() > 1.5 * plain["interior"].mean()
    assert shaped["free"].mean() < 0.5 * plain["free"].mean()


def test_distill_starts_from_the_prefitted_rig_when_the_preset_asks(ellipsoid_orbit):
    supervision, _ = ellipsoid_orbit
    oracle = EllipsoidOracle(levels=NoiseLevels(100, 1000), radii=RADII)
    chosen = tiny_preset(iterations=8, interval=2, resolutions=((0, 16),))
    views = oracle.views(chosen.views.cameras())
    rig = RigGeometry(rig_views(*ellipsoid_mesh(), views.cameras), rig_views(*ellipsoid_mesh(), supervision.cameras(ViewRig())))
    points, truth = random_probes(seed=2)
    deep = torch.from_numpy(truth < -0.01)

    def inside_density(prefit_steps):
        rigged = dataclasses.replace(chosen, rig=dataclasses.replace(supervision, rays=64, prefit_steps=prefit_steps,
                                                                        prefit_points=1024))
        field = distill(oracle, views, Condition(torch.zeros(1, 3, 8, 8)), rigged, rig=rig, box=BOX).field
        with torch.no_grad():
            return field.query_unit(points[deep])[0].median()

    # 8 photometric steps leave the start's density where it was.
    assert inside_density(0) < supervision.solid_density < inside_density(60)

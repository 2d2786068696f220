"""Motion compensation: a warm frame's field starts with the previous head moved along
with the rig (distill/warm_start.carry_along_rig)."""

import numpy as np
import pytest
import torch

from joker.box import Box
from joker.distill.field import FieldConfig, RadianceField
from joker.distill.warm_start import CARRY_FADE_M, carry_along_rig, rig_displacement
from joker_core.errors import JobCancelled

MOVING, STILL = np.array([0.0, 0.0, 0.03]), np.array([-0.07, 0.06, -0.06])  # blob centres, metres
RADIUS = 0.015
SHIFT = np.array([0.008, -0.004, 0.0])  # the rig's translation between the two frames


def _blobs() -> RadianceField:
    """A field with two dense balls (red where the rig is, green away from it)."""
    torch.manual_seed(0)
    field = RadianceField(Box(), FieldConfig(resolutions=(32, 64), channels=6, hidden=32, blob_density=0.0))
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-2)
    centres = torch.tensor(np.stack([MOVING, STILL]), dtype=torch.float32)
    colours = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    for _ in range(300):
        near = centres[torch.randint(2, (2048,))] + torch.randn(2048, 3) * RADIUS
        points = torch.cat([torch.rand(2048, 3) * 0.24 - 0.12, near])
        distance, which = torch.cdist(points, centres).min(1)
        inside = distance < RADIUS
        density, rgb = field.query_unit(field.box.to_unit(points))
        loss = ((torch.log1p(density) - np.log1p(50.0) * inside).abs().mean()
                + (inside[:, None] * (rgb - colours[which]).abs()).mean())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return field


def _centroid(field: RadianceField, centre: np.ndarray) -> np.ndarray:
    """Density-weighted mean of the points within 3 cm of `centre`."""
    axis = torch.linspace(-0.03, 0.03, 25)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    points = grid + torch.tensor(centre, dtype=torch.float32)
    density = field.density(points)
    return ((density[:, None] * points).sum(0) / density.sum()).numpy()


def _rig(centre: np.ndarray) -> np.ndarray:
    """A point cloud filling the moving ball: the 'rig' vertices."""
    rng = np.random.default_rng(0)
    directions = rng.normal(size=(400, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return centre + directions * RADIUS * rng.uniform(0, 1, (400, 1)) ** (1 / 3)


def test_the_displacement_is_the_rigs_near_it_and_zero_far_from_it():
    before = _rig(MOVING)
    after = torch.tensor(before + SHIFT, dtype=torch.float32)
    points = torch.tensor(np.stack([MOVING + SHIFT, MOVING + SHIFT + [0, 0, RADIUS + 1.5 * CARRY_FADE_M]]),
                          dtype=torch.float32)
    shift = rig_displacement(points, torch.tensor(before, dtype=torch.float32), after).numpy()
    assert np.allclose(shift[0], SHIFT, atol=1e-6)
    assert np.allclose(shift[1], 0.0)


def test_the_carried_field_moves_the_blob_with_the_rig_and_keeps_the_rest():
    field = _blobs()
    start_moving, start_still = _centroid(field, MOVING), _centroid(field, STILL)
    assert np.linalg.norm(start_moving - MOVING) < 0.002  # the fixture holds its blobs
    assert field.density(torch.tensor(np.array([MOVING]), dtype=torch.float32)) > 20
    before, weights = _rig(MOVING), {name: value.clone() for name, value in field.state_dict().items()}
    carried = carry_along_rig(field, before, before + SHIFT, (1e-2, 1e-3), torch.Generator().manual_seed(0))
    assert np.linalg.norm(_centroid(carried, MOVING) - (start_moving + SHIFT)) < 0.002
    assert np.linalg.norm(_centroid(carried, STILL) - start_still) < 0.001
    assert carried.color(torch.tensor(np.array([MOVING + SHIFT]), dtype=torch.float32))[0, 0] > 0.8  # red, moved along
    assert all(torch.equal(value, weights[name]) for name, value in field.state_dict().items())  # the previous field stays as it was


def test_a_cancel_stops_the_carrying():
    field = RadianceField(Box(), FieldConfig(resolutions=(16,), channels=4, hidden=16))
    before = _rig(MOVING)
    with pytest.raises(JobCancelled):
        carry_along_rig(field, before, before + SHIFT, (1e-2, 1e-3), torch.Generator().manual_seed(0),
                        cancel=lambda: True)

"""The head in the rig's topology is textured as the marching-cubes mesh is: the field's
colour baked, then the views' colours wherever a view sees the skin."""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from joker.generation.turntable import view_mesh
from joker.mesh.pipeline import MeshSettings
from joker.mesh.rig_uv import textured_rig_mesh
from joker_core.cameras import ViewRig
from joker_core.demo_head import load_demo_head

SETTINGS = MeshSettings(texture_size=128)


def grey(points: torch.Tensor) -> torch.Tensor:
    return torch.full((len(points), 3), 0.5)


def test_the_rig_head_takes_the_views_colours_where_they_see_it():
    model = load_demo_head()
    vertices = np.asarray(model.v_template)
    front = ViewRig(tuple(vertices.mean(0)), 0.6, 30.0, 64).camera(0.0, 0.0)
    red = torch.zeros(1, 3, 64, 64)
    red[:, 0] = 1.0
    for views, expected in ((None, (0.5, 0.5, 0.5)), (([front], red), (1.0, 0.0, 0.0))):
        seen = view_mesh(textured_rig_mesh(model, vertices, grey, SETTINGS, views=views), front)
        inner = torch.from_numpy(ndimage.binary_erosion(seen.mask.numpy(), iterations=3))
        assert inner.sum() > 500  # the face fills the view
        np.testing.assert_allclose(seen.colour[inner].median(0).values.numpy(), expected, atol=0.02)

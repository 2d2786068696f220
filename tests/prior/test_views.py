"""Views: what the prior sees (normal maps) and where the head is (silhouettes) may differ."""

import pytest
import torch

from joker.prior.base import Views
from joker_core.cameras import ViewRig
from joker_core.errors import JokerError

CAMERAS = ViewRig(size=8).grid(2, 1)


def _face_only_maps() -> torch.Tensor:
    maps = torch.zeros(2, 3, 8, 8)
    maps[:, :, 2:4, 2:4] = 0.5  # a face-region map covers only part of the head
    return maps


def test_silhouettes_win_over_face_only_normal_maps():
    head = torch.zeros(2, 1, 8, 8)
    head[:, :, 1:7, 1:7] = 1
    views = Views(CAMERAS, _face_only_maps(), head)
    assert views.foreground().sum() == head.sum()
    assert Views(CAMERAS, _face_only_maps()).foreground().sum() == 2 * 4  # fallback: the maps


def test_subset_keeps_each_views_silhouette_and_bad_shapes_are_refused():
    head = torch.arange(2.0).view(2, 1, 1, 1).expand(2, 1, 8, 8).clone()
    assert Views(CAMERAS, _face_only_maps(), head).subset([1]).silhouettes.unique().tolist() == [1.0]
    with pytest.raises(JokerError, match="silhouette"):
        Views(CAMERAS, _face_only_maps(), torch.ones(2, 8, 8))

"""The preview strip the distiller publishes: panel-sized at every render size a job can
use (the add-on decodes it on Blender's UI thread), area-averaged, written by the engine's
PNG writer."""

import numpy as np
import pytest
import torch
from PIL import Image

from joker.distill.preview import PREVIEW_TILE, PREVIEW_VIEWS, preview_strip, write_preview
from joker.distill.schedule import PRESETS

RENDER_WIDTHS = sorted({width for chosen in PRESETS.values() for _, width in chosen.schedule.resolutions})


def _views(count: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Renders: view i a flat grey i/8; targets: a one-pixel black/white checkerboard,
    whose area average is about 0.5 over any area of a few pixels."""
    renders = torch.arange(count).float().div(8).view(count, 1, 1, 1).expand(count, 3, side, side)
    rows, cols = torch.meshgrid(torch.arange(2 * side), torch.arange(2 * side), indexing="ij")
    targets = ((rows + cols) % 2).float().expand(count, 3, -1, -1)
    return renders, targets


@pytest.mark.parametrize("width", RENDER_WIDTHS + [1024])
def test_the_strip_fits_the_panel_at_every_render_width(width):
    renders, targets = _views(6, width)
    strip = preview_strip(renders, targets)
    tile = min(width, PREVIEW_TILE)
    assert strip.shape == (2 * tile, PREVIEW_VIEWS * tile, 3) and strip.dtype == np.uint8
    assert strip.shape[0] <= 192 and strip.shape[1] <= 384
    top = strip[:tile].reshape(tile, PREVIEW_VIEWS, tile, 3)
    assert [int(v) for v in top[0, :, 0, 0]] == [round(i / 8 * 255) for i in range(PREVIEW_VIEWS)]
    assert (top == top[:1, :, :1]).all()  # a flat render stays flat when shrunk
    targets_row = strip[tile:].astype(int)  # averaged over areas, not picked pixel by pixel (0 or 255)
    assert np.abs(targets_row - 128).max() <= 32 and abs(targets_row.mean() - 127.5) < 2


def test_a_preview_file_holds_the_strip(tmp_path):
    renders, targets = _views(2, 300)  # fewer views than a strip holds: a narrower strip
    path = write_preview(tmp_path / "refresh_000.png", renders, targets)
    with Image.open(path) as image:
        assert np.array_equal(np.asarray(image), preview_strip(renders, targets))
    assert np.asarray(Image.open(path)).shape == (192, 192, 3)
    assert not list(tmp_path.glob("*.part"))

"""What a user hands the 2D prior, as tensors: the reference photo and the views, either a
folder written by `joker render-normals` (or the add-on) or rendered here from the rig."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from joker_core.cameras import Camera
from joker_core.errors import JokerError

from ..base import Views


def _image_tensor(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float() / 255.0


def load_reference_photo(path: Path) -> np.ndarray:
    """The reference photo as H x W x 3 uint8, refused unless it is a square portrait crop."""
    from joker.prior.projection.photo import load_photo

    photo = load_photo(path)
    height, width = photo.shape[:2]
    if height != width:
        raise JokerError(f"reference photo {path} is {width}x{height}, not a square portrait crop",
                         "crop it to a square with the face centred")
    return photo


def reference_image(photo: np.ndarray, size: int) -> torch.Tensor:
    """A square photo -> 1 x 3 x size x size in [0, 1], resized to the prior's size."""
    if photo.shape[0] != size:
        photo = np.asarray(Image.fromarray(photo).resize((size, size), Image.Resampling.LANCZOS))
    return _image_tensor(photo)[None]


def read_normals_folder(folder: Path) -> Views:
    """`view_NNN.png` + `cameras.json` (joker render-normals layout) -> Views."""
    try:
        records = json.loads((folder / "cameras.json").read_text())["views"]
        cameras = [Camera.from_dict(record["camera"]) for record in records]
        maps = [np.asarray(Image.open(folder / record["image"]).convert("RGB")) for record in records]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise JokerError(f"normal-map folder {folder} is incomplete or malformed ({exc})",
                         "give a folder written by `joker render-normals` (PNGs + cameras.json)") from exc
    if not records:
        raise JokerError(f"normal-map folder {folder} lists no views", "render at least one view")
    sizes = {m.shape[:2] for m in maps}
    if len(sizes) != 1:
        raise JokerError(f"normal maps in {folder} have different sizes {sorted(sizes)}",
                         "render all views at one size")
    return Views(cameras, torch.stack([_image_tensor(m) for m in maps]))


def render_views(size: int, params, views_spec: str, mode: str, model=None) -> Views:
    """Normal maps of the posed head (default: the demo head) from a view set at `size` px."""
    from joker_core.framing import head_view_rig
    from joker.render.head_views import render_head
    from joker.render.view_sets import view_set

    if model is None:
        from joker_core.demo_head import load_demo_head

        model = load_demo_head()
    cameras = [view.camera for view in view_set(head_view_rig(model, size=size), views_spec)]
    maps = render_head(model, params.validated(model), cameras, mode=mode)
    return Views(cameras, torch.stack([m.as_image() for m in maps]))

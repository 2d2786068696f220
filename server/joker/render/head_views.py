"""Normal maps of a posed head from a set of views, and the view folder they are saved as
(its layout: joker_core.view_folder)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from joker_core.cameras import Camera
from joker_core.face_region import drawn_faces
from joker_core.head_model import HeadModel
from joker_core.rig_params import RigParams
from joker_core.view_folder import FolderView, write_view_folder
from joker.rig.lbs_torch import batch_params, lbs, torch_rig

from .normal_maps import NormalMap, render_normal_map
from .view_sets import View


def render_head(model: HeadModel, params: RigParams, cameras: Sequence[Camera], *,
                mode: str = "full", device: str = "cpu") -> list[NormalMap]:
    """Pose the model once, then render its normal map from every camera."""
    drawn = drawn_faces(model, mode)
    drawn = None if drawn is None else torch.as_tensor(drawn, device=device)
    faces = torch.as_tensor(model.faces, dtype=torch.int64, device=device)
    with torch.no_grad():
        rig = torch_rig(model, device)
        vertices = lbs(rig, **batch_params([params], rig)).vertices[0]
        return [render_normal_map(vertices, faces, camera, drawn_faces=drawn) for camera in cameras]


def write_views(folder: Path, views: Sequence[View], maps: Sequence[NormalMap], description: dict) -> list[Path]:
    """The rendered maps as a view folder (joker_core.view_folder) in `folder`."""
    return write_view_folder(folder, [
        FolderView(view.camera, normal_map.encoded(), normal_map.mask.cpu().numpy(),
                   {"azimuth": view.azimuth, "elevation": view.elevation})
        for view, normal_map in zip(views, maps)], description)


def contact_sheet(maps: Sequence[NormalMap], columns: int) -> np.ndarray:
    """The encoded maps tiled row by row, `columns` per row (unfilled cells black)."""
    tiles = [m.encoded() for m in maps]
    height, width = tiles[0].shape[:2]
    rows = math.ceil(len(tiles) / columns)
    sheet = np.zeros((rows * height, columns * width, 3), dtype=np.uint8)
    for index, tile in enumerate(tiles):
        row, column = divmod(index, columns)
        sheet[row * height:(row + 1) * height, column * width:(column + 1) * width] = tile
    return sheet

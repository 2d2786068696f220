"""Normal maps of a posed head from a set of views, and the folder they are saved as.

The folder layout is what the add-on and batch jobs exchange: `view_000.png` (encoded
normals), `mask_000.png` (foreground, 0/255), ... and `cameras.json` with every view's
camera (joker_core.cameras.Camera.to_dict), azimuth and elevation, the rig, the posing
parameters and the model's name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from joker_core.cameras import Camera
from joker_core.face_region import drawn_faces
from joker_core.head_model import HeadModel
from joker_core.png import encode_png
from joker_core.rig_params import RigParams
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
    """Write the PNGs and cameras.json into `folder` (a staging folder: see
    joker_core.files.atomic_directory). `description` is merged into cameras.json."""
    written, records = [], []
    for index, (view, normal_map) in enumerate(zip(views, maps)):
        image, mask = f"view_{index:03d}.png", f"mask_{index:03d}.png"
        (folder / image).write_bytes(encode_png(normal_map.encoded()))
        (folder / mask).write_bytes(encode_png(normal_map.mask.cpu().numpy().astype(np.uint8) * 255))
        written += [folder / image, folder / mask]
        records.append({"image": image, "mask": mask, "azimuth": view.azimuth,
                        "elevation": view.elevation, "camera": view.camera.to_dict()})
    (folder / "cameras.json").write_text(json.dumps({**description, "views": records}, indent=1))
    return [*written, folder / "cameras.json"]


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

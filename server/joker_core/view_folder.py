"""The normal-map folder the add-on, `joker render-normals` and the prior commands
exchange: `view_000.png` (encoded normals, conventions.encode_normals), `mask_000.png`
(foreground, 0/255), ... and `cameras.json`, which lists every view (its files, its
Camera.to_dict and whatever else the writer knows of it, e.g. azimuth and elevation) under
"views", beside the writer's description (rig, posing parameters, model name, mode)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .cameras import Camera
from .png import encode_png

CAMERAS_FILE = "cameras.json"


@dataclass(frozen=True)
class FolderView:
    camera: Camera
    normals: np.ndarray   # H x W x 3 uint8, encoded
    mask: np.ndarray      # H x W bool
    details: dict[str, Any] = field(default_factory=dict)  # more about the view, e.g. azimuth/elevation


def write_view_folder(folder: Path, views: Sequence[FolderView], description: dict[str, Any]) -> list[Path]:
    """Write the PNGs and cameras.json into `folder`, which should be a staging folder
    (joker_core.files.atomic_directory): the layout is whole or absent. Returns the paths."""
    written, records = [], []
    for index, view in enumerate(views):
        image, mask = f"view_{index:03d}.png", f"mask_{index:03d}.png"
        (folder / image).write_bytes(encode_png(view.normals))
        (folder / mask).write_bytes(encode_png(view.mask.astype(np.uint8) * 255))
        written += [folder / image, folder / mask]
        records.append({"image": image, "mask": mask, **view.details, "camera": view.camera.to_dict()})
    (folder / CAMERAS_FILE).write_text(json.dumps({**description, "views": records}, indent=1))
    return [*written, folder / CAMERAS_FILE]

"""A small synthetic training set from the demo head, so the training loop runs end to end
without any real data (CI, smoke tests). Targets are shaded renders of the posed head; the
shading is a function that can be swapped (`Shader`) for a better renderer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from joker_core.errors import JokerError
from joker_core.files import atomic_directory
from joker_core.png import encode_png

from .dataset import FORMAT, MANIFEST, SAMPLE_FILE, VERSION

# NormalMap (joker.render.normal_maps) -> H x W x 3 uint8 image of the head seen that way.
Shader = Callable[[object], np.ndarray]

SKIN = np.array([0.85, 0.66, 0.55])
BACKDROP = np.array([0.55, 0.58, 0.62])
LIGHT = np.array([0.35, 0.45, 0.82])  # camera space: from upper right, toward the viewer


def lambert_shader(normal_map) -> np.ndarray:
    """Skin-coloured Lambertian shading under one key light plus ambient, grey backdrop."""
    normals = normal_map.normals.detach().cpu().numpy()
    mask = normal_map.mask.cpu().numpy()[..., None]
    light = LIGHT / np.linalg.norm(LIGHT)
    shade = 0.35 + 0.65 * np.clip(normals @ light, 0.0, 1.0)[..., None]
    image = np.where(mask, SKIN * shade, BACKDROP)
    return np.rint(image * 255).astype(np.uint8)


def _png(path: Path, image: np.ndarray) -> None:
    path.write_bytes(encode_png(image))


def write_synthetic_dataset(root: Path, count: int, image_size: int = 64, presets: Sequence[str] | None = None,
                            seed: int = 0, shader: Shader = lambert_shader, overwrite: bool = False) -> Path:
    """`count` samples of the demo head: presets in turn, random views over the published
    ranges (azimuth +-45, elevation +-20); the reference is the neutral head from the front."""
    import torch

    from joker_core.framing import head_view_rig
    from joker.render.head_views import render_head
    from joker_core.demo_head import load_demo_head
    from joker_core.presets import get_preset, list_presets

    if count < 1:
        raise JokerError(f"{count} synthetic samples", "ask for at least one sample")
    head = load_demo_head()
    rig = head_view_rig(head, size=image_size)
    names = list(presets or list_presets())
    cameras = rig.random(count, seed=seed)
    with torch.no_grad():
        reference_map = render_head(head, get_preset("neutral").params_for(head), [rig.camera(0.0, 0.0)])[0]
    with atomic_directory(root, overwrite=overwrite) as staging:
        (staging / MANIFEST).write_text(json.dumps({"format": FORMAT, "version": VERSION, "image_size": image_size}))
        for index, camera in enumerate(cameras):
            preset = get_preset(names[index % len(names)])
            params = preset.params_for(head)
            with torch.no_grad():
                normal_map = render_head(head, params, [camera])[0]
            folder = staging / "samples" / f"{index:05d}_{preset.name}"
            folder.mkdir(parents=True)
            _png(folder / "target.png", shader(normal_map))
            _png(folder / "normal.png", normal_map.encoded())
            _png(folder / "reference_0.png", shader(reference_map))
            meta = {"caption": preset.prompt, "camera": camera.to_dict(), "rig": params.to_dict()}
            (folder / SAMPLE_FILE).write_text(json.dumps(meta, indent=1))
    return Path(root)

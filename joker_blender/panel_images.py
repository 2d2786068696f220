"""Pictures the panels show: a running job's newest preview and a result's turntable.

A PNG is decoded by Blender's own image loading (the add-on has no PIL) into a temporary
image datablock, its pixels are copied into a custom preview of ONE `bpy.utils.previews`
collection, and the datablock is removed at once: the preview holds exactly the file's
pixels, nothing lands in bpy.data or a saved .blend, and unregister frees every picture.
"""

from __future__ import annotations

from pathlib import Path

import bpy
import bpy.utils.previews
import numpy as np

from joker_core.errors import JokerError

MAX_PIXELS = 4096 * 4096  # a preview strip or turntable is far smaller; anything bigger is not ours

_pictures = None  # the add-on's preview collection while it is registered


def show(key: str, png: Path) -> bpy.types.ImagePreview:
    """Decode `png` into the picture `key` (replacing what it showed); JokerError if
    Blender cannot read it."""
    return _put(key, _decode(png))


def show_tiles(key: str, png: Path) -> list[bpy.types.ImagePreview]:
    """Decode a strip of square frames side by side (a turntable) into one picture per
    frame, `key`/0, `key`/1, ... (one picture if it is not such a strip)."""
    pixels = _decode(png)
    height, width = pixels.shape[:2]
    count = width // height if width % height == 0 else 1
    release_tiles(key)
    return [_put(f"{key}/{index}", tile) for index, tile in enumerate(np.split(pixels, count, axis=1))]


def _decode(png: Path) -> np.ndarray:
    """H x W x 4 float RGBA of `png`, rows bottom-up as Blender keeps them."""
    image = _load(png)
    try:
        width, height = image.size
        if not 0 < width * height <= MAX_PIXELS:
            raise JokerError(f"{png.name} is {width}x{height} pixels, not a picture the panel can show",
                             "open it from the job folder instead")
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)


def _put(key: str, pixels: np.ndarray) -> bpy.types.ImagePreview:
    picture = _pictures.get(key) or _pictures.new(key)
    picture.image_size = (pixels.shape[1], pixels.shape[0])
    picture.image_pixels_float.foreach_set(np.ascontiguousarray(pixels).reshape(-1))
    return picture


def _load(png: Path) -> bpy.types.Image:
    try:
        return bpy.data.images.load(str(png), check_existing=False)
    except RuntimeError as error:  # Blender's "Error: Cannot read file ..."
        raise JokerError(f"Blender cannot read {png} ({error})", "open the job folder and check the file") from error


def get(key: str) -> bpy.types.ImagePreview | None:
    return _pictures.get(key) if _pictures is not None else None


def icon(key: str) -> int:
    """The picture's icon id for `layout.template_icon` (0: none)."""
    picture = get(key)
    return picture.icon_id if picture is not None else 0


def tile_icons(key: str) -> list[int]:
    """Icon ids of the pictures show_tiles made under `key`, in order."""
    icons = []
    while (picture := get(f"{key}/{len(icons)}")) is not None:
        icons.append(picture.icon_id)
    return icons


def release(key: str) -> None:
    """Forget the picture `key` (nothing if there is none)."""
    if _pictures is not None and key in _pictures:
        del _pictures[key]


def release_tiles(key: str) -> None:
    for index in range(len(tile_icons(key))):
        release(f"{key}/{index}")


def release_all() -> None:
    if _pictures is not None:
        _pictures.clear()


def live_key(job_id: str) -> str:
    """The picture of a job's newest preview."""
    return f"live/{job_id}"


def turntable_key(folder: str | Path) -> str:
    """The picture of the turntable in a result's job folder."""
    return f"turntable/{Path(folder).as_posix()}"


def register() -> None:
    global _pictures
    _pictures = bpy.utils.previews.new()


def unregister() -> None:
    global _pictures
    bpy.utils.previews.remove(_pictures)
    _pictures = None

"""Loading the reference photo as the rest of the projection prior expects it: upright
(EXIF orientation applied), 8-bit RGB, H x W x 3 uint8, within sane size limits.

Cameras, grayscale scans, PNGs with alpha and 16-bit TIFFs all arrive here; they leave as
one format. The size is checked from the header before any pixel is decoded, so a
decompression bomb is refused without allocating it.
"""

from __future__ import annotations

import io
import os
import warnings
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from joker_core.errors import JokerError
from joker_core.files import input_file

MIN_SIDE = 64                 # px: below this no face can be 64 px wide
MAX_PIXELS = 40_000_000       # 40 MP: larger than any camera photo a user would need
ALPHA_BACKGROUND = 255        # transparent pixels become white, like a studio backdrop

PhotoSource = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


def load_photo(source: PhotoSource) -> np.ndarray:
    """A path, encoded bytes, PIL image or array -> upright H x W x 3 uint8 RGB."""
    if isinstance(source, np.ndarray):
        return _check_size(_array_to_rgb(source))
    image = source if isinstance(source, Image.Image) else _open(source)
    _check_size_of(image.size)
    try:
        image = ImageOps.exif_transpose(image)
        return _check_size(_array_to_rgb(_decode(image)))
    except (OSError, SyntaxError, ValueError) as exc:  # truncated or corrupt pixel data
        raise JokerError(f"the photo could not be decoded ({exc})",
                         "re-export it as a PNG or JPEG") from exc


def _open(source: str | os.PathLike | bytes) -> Image.Image:
    if isinstance(source, bytes):
        handle, name = io.BytesIO(source), "the photo data"
    else:
        path = input_file(source, "photo")
        handle, name = path, str(path)
    try:
        with warnings.catch_warnings():  # the size is checked against our own, lower limit next
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(handle)
    except UnidentifiedImageError as exc:
        raise JokerError(f"{name} is not an image format Joker can read",
                         "use a PNG, JPEG, TIFF or WebP photo") from exc
    except Image.DecompressionBombError as exc:
        raise JokerError(f"{name} is too large to open safely ({exc})",
                         f"downscale it to at most {MAX_PIXELS // 1_000_000} megapixels") from exc


def _decode(image: Image.Image) -> np.ndarray:
    """PIL modes to an array that still carries its bit depth and alpha."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if values.max(initial=0) > 255 else 255.0  # mode "I" from 8-bit data
        return (values / peak * 255.0).round().clip(0, 255).astype(np.uint8)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        return (values.clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
    if image.mode in ("RGB", "RGBA", "L", "LA"):
        return np.asarray(image)
    has_alpha = image.mode in ("PA", "RGBa", "La") or "transparency" in image.info
    return np.asarray(image.convert("RGBA" if has_alpha else "RGB"))


def _array_to_rgb(array: np.ndarray) -> np.ndarray:
    """H x W, H x W x 1/2/3/4 of uint8/uint16/float in [0, 1] -> H x W x 3 uint8."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 2, 3, 4):
        raise JokerError(f"a photo array must be H x W or H x W x 1..4, got shape {array.shape}",
                         "pass an RGB(A) or grayscale image")
    array = _to_uint8(array)
    colour, alpha = (array[..., :-1], array[..., -1:]) if array.shape[2] in (2, 4) else (array, None)
    if colour.shape[2] == 1:
        colour = np.repeat(colour, 3, axis=2)
    if alpha is None:
        return np.ascontiguousarray(colour)
    weight = alpha.astype(np.float64) / 255.0
    blended = colour * weight + ALPHA_BACKGROUND * (1.0 - weight)
    return blended.round().astype(np.uint8)


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        return (array.astype(np.float64) / 257.0).round().astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise JokerError("the photo array contains NaN or inf", "pass finite pixel values")
        return (array.clip(0.0, 1.0) * 255.0).round().astype(np.uint8)
    raise JokerError(f"photo arrays of dtype {array.dtype} are not supported",
                     "pass uint8, uint16 or float pixels in [0, 1]")


def _check_size_of(size: tuple[int, int]) -> None:
    width, height = size
    if width * height > MAX_PIXELS:
        raise JokerError(f"the photo is {width} x {height} ({width * height / 1e6:.0f} MP), "
                         f"more than the {MAX_PIXELS // 1_000_000} MP limit",
                         f"downscale it to at most {MAX_PIXELS // 1_000_000} megapixels")
    if min(width, height) < MIN_SIDE:
        raise JokerError(f"the photo is only {width} x {height} px",
                         f"use a photo at least {MIN_SIDE} px on each side, with the face "
                         f"at least {MIN_SIDE} px wide")


def _check_size(rgb: np.ndarray) -> np.ndarray:
    _check_size_of((rgb.shape[1], rgb.shape[0]))
    return rgb

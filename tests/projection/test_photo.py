import io
import struct
import zlib

import numpy as np
import pytest
import skimage.data
from PIL import Image

from joker.prior.projection.photo import MAX_PIXELS, load_photo
from joker_core.errors import JokerError


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    return skimage.data.astronaut()


def test_rgb_file_on_disk_round_trips(tmp_path, portrait):
    path = tmp_path / "portrait.png"
    path.write_bytes(encode(Image.fromarray(portrait)))
    assert np.array_equal(load_photo(path), portrait)
    assert np.array_equal(load_photo(str(path)), portrait)


def test_grayscale_becomes_three_equal_channels(portrait):
    gray = np.asarray(Image.fromarray(portrait).convert("L"))
    rgb = load_photo(encode(Image.fromarray(gray)))
    assert rgb.shape == (*gray.shape, 3)
    assert all(np.array_equal(rgb[..., c], gray) for c in range(3))


def test_rgba_is_composited_over_white(portrait):
    alpha = np.zeros(portrait.shape[:2], np.uint8)
    alpha[:, 256:] = 255
    alpha[:, 128:256] = 128
    rgba = np.dstack([portrait, alpha])
    rgb = load_photo(encode(Image.fromarray(rgba, "RGBA")))
    assert np.array_equal(rgb[:, 256:], portrait[:, 256:])
    assert (rgb[:, :128] == 255).all()
    expected_half = np.round(portrait[:, 128:256] * (128 / 255) + 255 * (127 / 255))
    assert np.abs(rgb[:, 128:256].astype(int) - expected_half).max() <= 1


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    values = (np.linspace(0, 65535, 128 * 96).reshape(96, 128)).astype(np.uint16)
    image = Image.fromarray(values)  # mode I;16
    rgb = load_photo(encode(image))
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255
    assert np.abs(rgb[..., 0].astype(int) - np.round(values / 257.0)).max() <= 1


def test_exif_rotation_is_applied(portrait):
    # A camera held sideways stores the pixels rotated and says so in EXIF (orientation 6:
    # rotate 90 degrees clockwise to view).
    stored = np.rot90(portrait, k=1)  # counter-clockwise, as the sensor saw it
    exif = Image.Exif()
    exif[0x0112] = 6
    upright = load_photo(encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif))
    assert upright.shape == portrait.shape
    assert np.abs(upright.astype(int) - portrait).mean() < 4  # JPEG loss only


def test_arrays_in_float_and_uint16_are_accepted(portrait):
    assert np.array_equal(load_photo(portrait / 255.0), portrait)
    assert np.array_equal(load_photo(portrait.astype(np.uint16) * 257), portrait)


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares its size but holds no pixels: what a decompression bomb's
    header looks like to a reader that checks before decoding."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def test_huge_photo_is_refused_from_its_header():
    with pytest.raises(JokerError, match="megapixels"):
        load_photo(_png_header_only(10_000, 10_000))
    assert 10_000 * 10_000 > MAX_PIXELS


@pytest.mark.parametrize("size", [(32, 400), (400, 40)])
def test_tiny_photo_is_refused(size):
    with pytest.raises(JokerError, match="at least 64 px"):
        load_photo(encode(Image.new("RGB", size)))


def test_not_an_image_and_missing_file_are_clear(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(JokerError, match="not an image format"):
        load_photo(text)
    with pytest.raises(JokerError, match="does not exist"):
        load_photo(tmp_path / "missing.jpg")


def test_truncated_image_is_a_clear_error(portrait):
    data = encode(Image.fromarray(portrait))
    with pytest.raises(JokerError, match="could not be decoded"):
        load_photo(data[: len(data) // 2])


def test_bad_arrays_are_refused():
    with pytest.raises(JokerError, match="H x W"):
        load_photo(np.zeros((4, 100, 100, 3), np.uint8))
    with pytest.raises(JokerError, match="NaN"):
        load_photo(np.full((100, 100, 3), np.nan))

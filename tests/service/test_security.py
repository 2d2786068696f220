"""Token file, image decoding limits, and the address warning."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from service_harness import png_bytes
from joker.commands.serve import _is_loopback
from joker.service.errors import TooLarge, Unprocessable, UnsupportedMedia
from joker.service.security import PHOTO_FORMATS, check_image, load_or_create_token, token_matches
from joker_core.errors import JokerError


def test_the_token_is_created_once_owner_only_and_checked_in_constant_time(tmp_path):
    path = tmp_path / "config" / "joker" / "token"
    token = load_or_create_token(path)
    assert len(token) >= 32 and oct(path.stat().st_mode & 0o777) == "0o600"
    assert load_or_create_token(path) == token
    assert token_matches(f"Bearer {token}", token) and token_matches(f"bearer {token}", token)
    assert not token_matches(f"Bearer {token}x", token) and not token_matches(None, token)
    assert not token_matches(token, token)


def test_a_token_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "token"
    load_or_create_token(path)
    os.chmod(path, 0o644)
    with pytest.raises(JokerError, match="chmod 600"):
        load_or_create_token(path)


def test_images_are_checked_within_limits():
    assert check_image(png_bytes((12, 7), (1, 2, 3)), "reference", PHOTO_FORMATS, 100) == ((12, 7), "PNG")
    with pytest.raises(TooLarge):
        check_image(png_bytes((12, 9)), "reference", PHOTO_FORMATS, 100)


def test_formats_outside_the_allow_list_and_damaged_files_are_refused():
    gif = io.BytesIO()
    Image.new("RGB", (4, 4)).save(gif, format="GIF")
    with pytest.raises(UnsupportedMedia):
        check_image(gif.getvalue(), "reference", PHOTO_FORMATS, 10**6)
    jpeg = io.BytesIO()
    Image.new("RGB", (4, 4)).save(jpeg, format="JPEG")
    with pytest.raises(UnsupportedMedia):  # normal maps must be lossless
        check_image(jpeg.getvalue(), "normal_maps.a.png", ("PNG",), 10**6)
    with pytest.raises(Unprocessable):
        check_image(png_bytes((64, 64))[:80], "reference", PHOTO_FORMATS, 10**6)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("::1", True), ("localhost", True),
                                            ("0.0.0.0", False), ("192.168.1.5", False), ("example.org", False)])
def test_only_loopback_addresses_skip_the_warning(host, loopback):
    assert _is_loopback(host) is loopback

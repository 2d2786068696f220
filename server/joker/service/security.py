"""Safe defaults: the access token, image decoding with limits, artifact names."""

from __future__ import annotations

import io
import os
import re
import secrets
import stat
import warnings
from pathlib import Path

from joker_core.errors import JokerError

from .errors import NotFound, TooLarge, UnsupportedMedia, Unprocessable

PHOTO_FORMATS = ("PNG", "JPEG", "WEBP")
NORMAL_MAP_FORMATS = ("PNG",)  # lossless: normals are encoded in the exact pixel values
_SEGMENT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def load_or_create_token(path: Path) -> str:
    """The server's access token; created on first start, readable by its owner only."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another server created it a moment ago
            return load_or_create_token(path)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        return token
    if os.name != "nt" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise JokerError(f"token file {path} is readable by other users",
                         f"run `chmod 600 {path}` (or delete it to get a new token)")
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise JokerError(f"token file {path} holds no usable token (under 16 characters)",
                         "delete it so the server creates a new one")
    return token


def token_matches(header: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token.encode())


def check_image(data: bytes, field: str, formats: tuple[str, ...], max_pixels: int) -> tuple[tuple[int, int], str]:
    """Untrusted image bytes -> ((width, height), format name), refusing other formats and
    pixel bombs before any pixel is decoded, then decoding every pixel once to find damage.
    No converted copy is made: the engine reads the file itself."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as error:
        raise TooLarge(field, str(error), f"send at most {max_pixels} pixels") from error
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as error:
        raise UnsupportedMedia(field, "is not an image in an accepted format",
                               f"send {' or '.join(formats)} bytes") from error
    width, height = image.size
    if width * height > max_pixels:
        raise TooLarge(field, f"image is {width}x{height} pixels",
                       f"send at most {max_pixels} pixels (e.g. a 512x512 crop)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombWarning,
            Image.DecompressionBombError) as error:
        raise Unprocessable(field, f"image data is damaged ({error})", "send the complete image file") from error
    finally:
        image.close()
    return (width, height), image.format


def is_plain_file_name(name: str) -> bool:
    """ASCII letters, digits, '_', '.', '-', not hidden: a name every artifact URL and
    file system takes as is."""
    return bool(_SEGMENT.match(name))


def check_artifact_name(name: str) -> str:
    """A relative path of plain segments: no '..', no absolute paths, no hidden files."""
    parts = name.split("/")
    if not name or len(name) > 512 or not all(_SEGMENT.match(part) for part in parts):
        raise NotFound("artifact", f"no artifact named {name[:80]!r}",
                       "use a name from the job's artifact list")
    return name


def resolve_inside(root: Path, name: str) -> Path:
    """`root/name` for a checked name, refusing anything that resolves outside `root`
    (a symlink planted by a job, say)."""
    path = (root / check_artifact_name(name)).resolve()
    if not path.is_relative_to(root.resolve()) or not path.is_file():
        raise NotFound("artifact", f"no artifact named {name[:80]!r}", "use a name from the job's artifact list")
    return path

"""A pure-Python wheel of `joker_core`, written directly (no build backend, no network).

The Blender extension bundles this wheel so that the add-on and the engine share ONE
definition of conventions, cameras, the FLAME format and the job protocol. The wheel is
reproducible: sorted entries and a fixed timestamp give identical bytes for identical code.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import joker_core

_FIXED_TIME = (2024, 1, 1, 0, 0, 0)
_WHEEL_FILE = "Wheel-Version: 1.0\nGenerator: joker-build\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _metadata(version: str) -> str:
    return ("Metadata-Version: 2.1\nName: joker_core\n"
            f"Version: {version}\nSummary: Joker for Blender shared core (conventions, rig format, protocol)\n"
            "License: GPL-3.0-or-later\nRequires-Python: >=3.11\nRequires-Dist: numpy\n")


def core_wheel_name(version: str = joker_core.__version__) -> str:
    return f"joker_core-{version}-py3-none-any.whl"


def build_core_wheel(out_dir: Path) -> Path:
    """Write joker_core-<version>-py3-none-any.whl into `out_dir` and return its path."""
    version = joker_core.__version__
    package_dir = Path(joker_core.__file__).parent
    dist_info = f"joker_core-{version}.dist-info"
    entries: list[tuple[str, bytes]] = [
        (f"joker_core/{path.relative_to(package_dir).as_posix()}", path.read_bytes())
        for path in sorted(package_dir.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    ]
    entries += [(f"{dist_info}/METADATA", _metadata(version).encode()),
                (f"{dist_info}/WHEEL", _WHEEL_FILE.encode())]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))

    out_dir.mkdir(parents=True, exist_ok=True)
    wheel_path = out_dir / core_wheel_name(version)
    with zipfile.ZipFile(wheel_path, "w", compression=zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            wheel.writestr(info, data)
    return wheel_path

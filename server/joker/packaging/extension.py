"""Assemble the Blender extension zip and check it with Blender's own extension tool.

Layout of the zip (what Blender expects): the add-on package's files at the root, the
manifest beside them, bundled wheels under wheels/. Building and validating go through
`blender_ext.py` — the script behind `blender --command extension build|validate` — taken
from a Blender install or from the `bpy` module, so what passes here passes in Blender.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from joker_core.errors import JokerError

from .core_wheel import build_core_wheel

REPO_ROOT = Path(__file__).resolve().parents[3]


def find_blender_ext_script() -> Path:
    """blender_ext.py from the installed `bpy` module (the test extra pins bpy 5.0.1)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise JokerError("Blender's extension tool was not found (no bpy module in this environment)",
                         "install the test extra (pip install -e '.[test]') or pass --blender-ext PATH/TO/blender_ext.py")
    bpy_dir = Path(list(spec.submodule_search_locations)[0])
    scripts = sorted(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not scripts:
        raise JokerError(f"no blender_ext.py inside {bpy_dir}", "pass --blender-ext PATH/TO/blender_ext.py")
    return scripts[-1]


def _run_blender_ext(script: Path, *args: str) -> str:
    result = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True)
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise JokerError(f"Blender's extension tool refused the package: {output.splitlines()[-1] if output else 'no output'}",
                         "fix blender_manifest.toml or the add-on files it names")
    return output


def stage_extension(staging: Path, repo_root: Path = REPO_ROOT) -> Path:
    """Copy add-on, manifest and freshly built wheels into `staging`; return it."""
    addon_dir, manifest = repo_root / "joker_blender", repo_root / "blender_manifest.toml"
    if not (addon_dir / "__init__.py").is_file() or not manifest.is_file():
        raise JokerError(f"no add-on sources at {repo_root}",
                         "run the build from a source checkout of Joker for Blender")
    shutil.copytree(addon_dir, staging, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(manifest, staging / "blender_manifest.toml")
    built = build_core_wheel(staging / "wheels")
    declared = tomllib.loads(manifest.read_text())["wheels"]
    present = {f"./wheels/{p.name}" for p in (staging / "wheels").glob("*.whl")}
    if set(declared) != present:
        raise JokerError(f"manifest lists wheels {sorted(declared)} but the build made {sorted(present)}",
                         f"set wheels = [\"./wheels/{built.name}\"] in blender_manifest.toml")
    return staging


def build_extension(out_dir: Path, blender_ext: Path | None = None) -> Path:
    """Build, then validate, the extension zip into `out_dir`; return the zip's path."""
    script = blender_ext or find_blender_ext_script()
    manifest = tomllib.loads((REPO_ROOT / "blender_manifest.toml").read_text())
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    with tempfile.TemporaryDirectory(prefix="joker-ext-") as tmp:
        staging = stage_extension(Path(tmp) / "src")
        _run_blender_ext(script, "build", "--source-dir", str(staging), "--output-filepath", str(zip_path))
    _run_blender_ext(script, "validate", str(zip_path))
    return zip_path

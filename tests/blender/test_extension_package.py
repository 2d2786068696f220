"""The extension as users get it: built zip, installed and enabled by Blender itself."""

import os
import zipfile
from pathlib import Path

import pytest

from blender_runner import REPORT, run_blender
from joker.packaging.core_wheel import build_core_wheel
from joker.packaging.extension import build_extension

pytestmark = pytest.mark.blender


# JOKER_EXTENSION_ZIP: a zip built by another Blender's tool, checked too; `make
# test-blender-lts` passes the one the project's bpy 5.0 builds, as users get it, to Blender 4.2.
ZIPS = ["built here"] + (["JOKER_EXTENSION_ZIP"] if os.environ.get("JOKER_EXTENSION_ZIP") else [])


@pytest.fixture(scope="module", params=ZIPS)
def extension_zip(request, tmp_path_factory):
    if request.param == "JOKER_EXTENSION_ZIP":
        return Path(os.environ["JOKER_EXTENSION_ZIP"])
    return build_extension(tmp_path_factory.mktemp("dist"))


def test_zip_has_addon_manifest_and_core_wheel_at_its_root(extension_zip):
    names = set(zipfile.ZipFile(extension_zip).namelist())
    assert {"__init__.py", "preferences.py", "blender_manifest.toml"} <= names
    assert any(n.startswith("wheels/joker_core-") and n.endswith("-py3-none-any.whl") for n in names)


def test_core_wheel_is_reproducible_and_has_a_valid_record(tmp_path):
    first = build_core_wheel(tmp_path / "a").read_bytes()
    wheel = build_core_wheel(tmp_path / "b")
    assert wheel.read_bytes() == first
    archive = zipfile.ZipFile(wheel)
    record = archive.read(next(n for n in archive.namelist() if n.endswith("RECORD"))).decode()
    listed = {line.split(",")[0] for line in record.splitlines()}
    assert listed == set(archive.namelist())
    assert "joker_core/conventions.py" in listed


INSTALL_AND_ENABLE = REPORT + """
import sys
# Hide the source checkout so joker_core can only come from the extension's bundled wheel.
sys.path[:] = [p for p in sys.path if not p.rstrip("/").endswith("/server")]
import bpy
zip_path = sys.argv[-1]
result = bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default",
                                                   enable_on_install=True)
module = "bl_ext.user_default.joker_blender"
prefs = bpy.context.preferences.addons[module].preferences
import joker_core
report(result=sorted(result), enabled=module in bpy.context.preferences.addons,
       server_url=prefs.server_url, core_file=joker_core.__file__)
"""


def test_built_zip_installs_and_enables_through_blenders_extension_machinery(extension_zip, tmp_path):
    out = run_blender(INSTALL_AND_ENABLE, tmp_path, str(extension_zip))
    assert out["result"] == ["FINISHED"] and out["enabled"]
    assert out["server_url"].startswith("http://127.0.0.1")
    assert "/extensions/.local/" in out["core_file"]  # the bundled wheel, installed by Blender


REGISTER_TWICE = REPORT + """
import sys
sys.path.insert(0, sys.argv[-1])
import bpy, joker_blender
classes = [joker_blender.preferences.JokerPreferences, joker_blender.properties.JokerSettings,
           *joker_blender._CLASSES]
handlers = bpy.app.handlers.depsgraph_update_post
states = []
for _ in range(2):
    joker_blender.register()
    states.append([all(c.is_registered for c in classes), hasattr(bpy.types.Scene, "joker"), len(handlers)])
    joker_blender.unregister()
    states.append([any(c.is_registered for c in classes), hasattr(bpy.types.Scene, "joker"), len(handlers)])
report(states=states, n_classes=len(classes))
"""


def test_addon_registers_and_unregisters_cleanly_twice(tmp_path):
    import joker.packaging.extension as ext
    out = run_blender(REGISTER_TWICE, tmp_path, str(ext.REPO_ROOT))
    assert out["n_classes"] >= 5
    registered, unregistered = out["states"][0], out["states"][1]
    assert registered[:2] == [True, True] and unregistered[:2] == [False, False]
    assert registered[2] == unregistered[2] + 1  # exactly one handler added, and removed again
    assert out["states"][2:] == out["states"][:2]  # the second cycle is identical to the first

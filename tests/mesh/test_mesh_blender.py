"""The GLB in real Blender: texture on Base Color, face toward -y, top toward +z (design §2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from joker.mesh.analytic import HEAD_PARTS, NOSE_TIP
from joker_core.conventions import flame_to_blender_points

from .support import SMALL

pytestmark = pytest.mark.blender

IMPORT_SCRIPT = Path(__file__).with_name("blender_import.py")


@pytest.fixture(scope="module")
def imported(head_files):
    pytest.importorskip("bpy")
    done = subprocess.run([sys.executable, str(IMPORT_SCRIPT), str(head_files.glb)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_texture_is_attached_to_base_color(imported):
    assert imported["mesh_objects"] == 1 and imported["uv_layers"] == 1
    assert imported["name"] == "head"
    assert imported["base_color_image"] == {"size": [SMALL.texture_size] * 2, "packed": True}


def test_face_looks_along_minus_y_and_top_is_plus_z(imported):
    nose_in_blender = flame_to_blender_points(np.array([NOSE_TIP]))[0]
    np.testing.assert_allclose(imported["lowest_y_point"], nose_in_blender, atol=0.01)
    assert -imported["points_min"][1] > imported["points_max"][1] + 0.02  # the nose side is -y
    (cranium_center, cranium_radii, _), *_ = HEAD_PARTS
    crown = flame_to_blender_points(np.array([cranium_center]) + [0, cranium_radii[1], 0])[0]
    np.testing.assert_allclose(imported["highest_z_point"], crown, atol=0.01)

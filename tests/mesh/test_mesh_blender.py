"""The GLB in real Blender: texture on Base Color, face toward -y, top toward +z (design §2)."""

from __future__ import annotations

import numpy as np
import pytest
from blender_runner import REPORT, run_blender

from analytic_fields import HEAD_PARTS, NOSE_TIP
from joker_core.conventions import flame_to_blender_points

from .support import SMALL

pytestmark = pytest.mark.blender

# Import the GLB into a factory-settings scene and report what landed, in world space.
IMPORT_GLB = REPORT + """
import sys
import bpy
import numpy as np

bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.ops.import_scene.gltf(filepath=sys.argv[1])
meshes = [obj for obj in bpy.context.scene.objects if obj.type == "MESH"]
obj = meshes[0]
world = np.array(obj.matrix_world)
points = np.array([v.co[:] for v in obj.data.vertices]) @ world[:3, :3].T + world[:3, 3]
principled = next(n for n in obj.active_material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
images = [link.from_node.image for link in principled.inputs["Base Color"].links
          if link.from_node.type == "TEX_IMAGE" and link.from_node.image is not None]
report(mesh_objects=len(meshes), name=obj.name, uv_layers=len(obj.data.uv_layers),
       base_color_images=[{"size": list(image.size), "packed": image.packed_file is not None} for image in images],
       points_min=points.min(axis=0).tolist(), points_max=points.max(axis=0).tolist(),
       lowest_y_point=points[points[:, 1].argmin()].tolist(),
       highest_z_point=points[points[:, 2].argmax()].tolist())
"""


@pytest.fixture(scope="module")
def imported(head_files, tmp_path_factory):
    pytest.importorskip("bpy")
    return run_blender(IMPORT_GLB, tmp_path_factory.mktemp("blender"), str(head_files.glb))


def test_texture_is_attached_to_base_color(imported):
    assert imported["mesh_objects"] == 1 and imported["uv_layers"] == 1
    assert imported["name"] == "head"
    assert imported["base_color_images"] == [{"size": [SMALL.texture_size] * 2, "packed": True}]


def test_face_looks_along_minus_y_and_top_is_plus_z(imported):
    nose_in_blender = flame_to_blender_points(np.array([NOSE_TIP]))[0]
    np.testing.assert_allclose(imported["lowest_y_point"], nose_in_blender, atol=0.01)
    assert -imported["points_min"][1] > imported["points_max"][1] + 0.02  # the nose side is -y
    (cranium_center, cranium_radii, _), *_ = HEAD_PARTS
    crown = flame_to_blender_points(np.array([cranium_center]) + [0, cranium_radii[1], 0])[0]
    np.testing.assert_allclose(imported["highest_z_point"], crown, atol=0.01)

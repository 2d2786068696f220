"""The GLB in real Blender: texture on Base Color (or on Emission when exported unlit), face
toward -y, top toward +z (design §2)."""

from __future__ import annotations

import numpy as np
import pytest
from blender_runner import REPORT, run_blender

from analytic_fields import HEAD_PARTS, NOSE_TIP
from joker.mesh.export import write_glb
from joker_core.conventions import flame_to_blender_points

from .support import SMALL

pytestmark = pytest.mark.blender

# Import each GLB into a factory-settings scene and report what landed, in world space.
IMPORT_GLB = REPORT + """
import sys
import bpy
import numpy as np

def images_on(nodes, node_type, socket):
    return [{"size": list(link.from_node.image.size), "packed": link.from_node.image.packed_file is not None}
            for node in nodes if node.type == node_type for link in node.inputs[socket].links
            if link.from_node.type == "TEX_IMAGE" and link.from_node.image is not None]

def describe(path):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=path)
    meshes = [obj for obj in bpy.context.scene.objects if obj.type == "MESH"]
    obj = meshes[0]
    world = np.array(obj.matrix_world)
    points = np.array([v.co[:] for v in obj.data.vertices]) @ world[:3, :3].T + world[:3, 3]
    nodes = obj.active_material.node_tree.nodes
    return dict(mesh_objects=len(meshes), name=obj.name, uv_layers=len(obj.data.uv_layers),
                base_color_images=images_on(nodes, "BSDF_PRINCIPLED", "Base Color"),
                emission_images=images_on(nodes, "EMISSION", "Color"),
                points_min=points.min(axis=0).tolist(), points_max=points.max(axis=0).tolist(),
                lowest_y_point=points[points[:, 1].argmin()].tolist(),
                highest_z_point=points[points[:, 2].argmax()].tolist())

report(**{path: describe(path) for path in sys.argv[1:]})
"""


@pytest.fixture(scope="module")
def imported(head_files, tmp_path_factory):
    pytest.importorskip("bpy")
    folder = tmp_path_factory.mktemp("blender")
    unlit = write_glb(head_files.mesh, folder / "head.glb", unlit=True)
    report = run_blender(IMPORT_GLB, folder, str(head_files.glb), str(unlit))
    return report[str(head_files.glb)], report[str(unlit)]


def test_texture_is_attached_to_base_color(imported):
    lit, _ = imported
    assert lit["mesh_objects"] == 1 and lit["uv_layers"] == 1
    assert lit["name"] == "head"
    assert lit["base_color_images"] == [{"size": [SMALL.texture_size] * 2, "packed": True}]
    assert lit["emission_images"] == []


def test_unlit_glb_shows_the_texture_as_emission(imported):
    _, unlit = imported
    assert unlit["mesh_objects"] == 1 and unlit["name"] == "head"
    assert unlit["emission_images"] == [{"size": [SMALL.texture_size] * 2, "packed": True}]
    assert unlit["base_color_images"] == []


def test_face_looks_along_minus_y_and_top_is_plus_z(imported):
    imported, _ = imported
    nose_in_blender = flame_to_blender_points(np.array([NOSE_TIP]))[0]
    np.testing.assert_allclose(imported["lowest_y_point"], nose_in_blender, atol=0.01)
    assert -imported["points_min"][1] > imported["points_max"][1] + 0.02  # the nose side is -y
    (cranium_center, cranium_radii, _), *_ = HEAD_PARTS
    crown = flame_to_blender_points(np.array([cranium_center]) + [0, cranium_radii[1], 0])[0]
    np.testing.assert_allclose(imported["highest_z_point"], crown, atol=0.01)

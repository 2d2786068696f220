"""Run as a script: import a GLB into a factory-settings Blender scene, print what landed as JSON.

Usage: python blender_import.py FILE.glb. Runs in its own process so bpy state never leaks
into the test session.
"""

import json
import sys

import bpy
import numpy as np


def base_color_image(material) -> dict | None:
    """The image node feeding the Principled BSDF's Base Color, if any."""
    principled = next(node for node in material.node_tree.nodes if node.type == "BSDF_PRINCIPLED")
    for link in principled.inputs["Base Color"].links:
        if link.from_node.type == "TEX_IMAGE" and link.from_node.image is not None:
            image = link.from_node.image
            return {"size": list(image.size), "packed": image.packed_file is not None}
    return None


def main(path: str) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_scene.gltf(filepath=path)
    meshes = [obj for obj in bpy.context.scene.objects if obj.type == "MESH"]
    obj = meshes[0]
    world = np.array(obj.matrix_world)
    local = np.array([vertex.co[:] for vertex in obj.data.vertices])
    points = local @ world[:3, :3].T + world[:3, 3]
    print(json.dumps({
        "mesh_objects": len(meshes),
        "name": obj.name,
        "faces": len(obj.data.polygons),
        "points_min": points.min(axis=0).tolist(),
        "points_max": points.max(axis=0).tolist(),
        "lowest_y_point": points[points[:, 1].argmin()].tolist(),
        "highest_z_point": points[points[:, 2].argmax()].tolist(),
        "base_color_image": base_color_image(obj.active_material),
        "uv_layers": len(obj.data.uv_layers),
    }))


main(sys.argv[1])

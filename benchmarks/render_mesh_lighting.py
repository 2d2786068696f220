"""The GLB in Blender (Cycles, CPU, a few samples) lit three ways, side by side: how the
baked colour reaches the user (docs/mesh.md, "Lighting").

    .venv/bin/python benchmarks/render_mesh_lighting.py HEAD.glb OUT.png [--samples 16] [--size 320]

1. as imported: the texture as Principled base colour, lit by a key light and a grey world
   (the photo's shading is in the texture, so it is lit twice);
2. the same texture as emission (what KHR_materials_unlit means in a viewer): the colours as
   the prior made them, no light at all;
3. half and half: base colour lit by the world only (flat, even light).
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import bpy
import numpy as np
from PIL import Image


def scene(size: int, samples: int) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.film_transparent = False
    world = bpy.data.worlds.new("world")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (0.6, 0.6, 0.6, 1.0)
    scene.world = world
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.location = (0.25, -0.55, 0.05)  # the face looks along -y in Blender
    camera.rotation_euler = (math.radians(88), 0.0, math.radians(24))
    camera.data.lens = 70
    scene.collection.objects.link(camera)
    scene.camera = camera


def key_light(strength: float) -> None:
    light = bpy.data.objects.new("key", bpy.data.lights.new("key", "SUN"))
    light.data.energy = strength
    light.rotation_euler = (math.radians(60), 0.0, math.radians(30))
    bpy.context.scene.collection.objects.link(light)


def as_emission(obj) -> None:
    material = obj.active_material
    nodes, links = material.node_tree.nodes, material.node_tree.links
    texture = next(node for node in nodes if node.type == "TEX_IMAGE")
    emission = nodes.new("ShaderNodeEmission")
    output = next(node for node in nodes if node.type == "OUTPUT_MATERIAL")
    links.new(texture.outputs["Color"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], output.inputs["Surface"])


def render(glb: Path, mode: str, size: int, samples: int, folder: Path) -> np.ndarray:
    scene(size, samples)
    bpy.ops.import_scene.gltf(filepath=str(glb))
    head = next(obj for obj in bpy.context.scene.objects if obj.type == "MESH")
    if mode == "lit":
        key_light(3.0)
    elif mode == "unlit":
        as_emission(head)
        bpy.context.scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (1, 1, 1, 1)
    else:  # world light only
        bpy.context.scene.world.node_tree.nodes["Background"].inputs["Color"].default_value = (1, 1, 1, 1)
    path = folder / f"{mode}.png"
    bpy.context.scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return np.asarray(Image.open(path).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("glb", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--size", type=int, default=320)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        images = [render(args.glb.resolve(), mode, args.size, args.samples, Path(folder))
                  for mode in ("lit", "unlit", "ambient")]
    Image.fromarray(np.concatenate(images, axis=1)).save(args.out)
    print(f"wrote {args.out}: lit by a key light / unlit (emission) / world light only")


if __name__ == "__main__":
    main()

"""The GLB in Blender (Cycles, CPU, a few samples) lit three ways, side by side: how the
baked colour reaches the user (docs/mesh.md, "Lighting").

    .venv/bin/python benchmarks/render_mesh_lighting.py HEAD.glb OUT.png [--samples 16] [--size 320] [--delit]

1. as imported: the texture as Principled base colour, lit by a key light and a grey world
   (the photo's shading is in the texture, so it is lit twice);
2. the same texture as emission (what KHR_materials_unlit means in a viewer): the colours as
   the prior made them, no light at all;
3. half and half: base colour lit by the world only (flat, even light).

With --delit, first the key light on a de-lit copy of the texture: the photo's shading
estimated as a second-order spherical-harmonics function of the file's normals, fitted
(robustly, on luminance) to the texels that face the front (the views' side), and divided
out; it prints how much of the luminance that shading explains.
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import bpy
import numpy as np
import trimesh
from PIL import Image

from joker.mesh.bake import rasterize_uv
from joker.mesh.export import TexturedMesh, write_glb
from joker.render.texels import fill_empty_texels

LUMINANCE = np.array([0.2126, 0.7152, 0.0722])


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


def _harmonics(normals: np.ndarray) -> np.ndarray:
    x, y, z = normals.T
    return np.stack([np.ones_like(x), x, y, z, x * y, x * z, y * z, x * x - y * y, 3 * z * z - 1], 1)


def delit_copy(glb: Path, out: Path) -> float:
    """Write `glb` with its shading divided out (module docstring) to `out`; return the
    fraction of the front texels' luminance variance the shading explains."""
    (loaded,) = trimesh.load(glb, force="scene", process=False).geometry.values()
    texture = np.asarray(loaded.visual.material.baseColorTexture.convert("RGB"))
    mesh = TexturedMesh(np.asarray(loaded.vertices), np.asarray(loaded.faces), np.asarray(loaded.visual.uv),
                        np.asarray(loaded.vertex_normals), texture)
    size = texture.shape[0]
    hits = rasterize_uv(mesh.uvs, mesh.faces, size)
    normals = np.einsum("nk,nkd->nd", hits.barycentric, mesh.normals[mesh.faces[hits.face]])
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    linear = (texture.reshape(-1, 3)[hits.texel] / 255.0) ** 2.2
    luminance, basis = linear @ LUMINANCE, _harmonics(normals)
    front = normals[:, 2] > 0.3  # the face looks along +z in the file
    weights = np.ones(front.sum())
    for _ in range(3):  # iteratively reweighted: eyes, lips and hair are albedo, not light
        coefficients = np.linalg.lstsq(basis[front] * weights[:, None], luminance[front] * weights, rcond=None)[0]
        residual = luminance[front] - basis[front] @ coefficients
        weights = 1 / np.maximum(1, np.abs(residual) / (1.5 * 1.4826 * np.median(np.abs(residual))))
    shading = basis @ coefficients
    explained = 1 - np.var(luminance[front] - shading[front]) / np.var(luminance[front])
    relative = np.clip(shading / np.median(shading[front]), 0.5, 2.0)
    image = np.zeros((size * size, 3))
    image[hits.texel] = np.clip(linear / relative[:, None], 0, 1) ** (1 / 2.2)
    covered = np.zeros(size * size, bool)
    covered[hits.texel] = True
    image = fill_empty_texels(image.reshape(size, size, 3), covered.reshape(size, size))
    write_glb(TexturedMesh(mesh.vertices, mesh.faces, mesh.uvs, mesh.normals,
                           np.rint(image * 255).astype(np.uint8)), out)
    return float(explained)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("glb", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--delit", action="store_true", help="first, the key light on a de-lit copy")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        images = [render(args.glb.resolve(), mode, args.size, args.samples, Path(folder))
                  for mode in ("lit", "unlit", "ambient")]
        if args.delit:
            delit = Path(folder) / "head.glb"
            explained = delit_copy(args.glb.resolve(), delit)
            print(f"shading from the normals explains {100 * explained:.1f} % of the front texels' luminance variance")
            images.insert(1, render(delit, "lit", args.size, args.samples, Path(folder)))
    Image.fromarray(np.concatenate(images, axis=1)).save(args.out)
    print(f"wrote {args.out}: lit by a key light / " + ("the same, de-lit / " if args.delit else "")
          + "unlit (emission) / world light only")


if __name__ == "__main__":
    main()

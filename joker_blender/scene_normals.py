"""Normal maps of the posed rig rendered by Blender itself (design.md §2 encoding).

Cycles renders one point sample at each pixel centre with a material override that emits
the camera-space normal as n * 0.5 + 0.5; the float EXR is read back and encoded by
joker_core.conventions.encode_normals, the same function the engine uses, so the two
sides cannot drift apart. "face" mode keeps only triangles wholly inside the model's
face region (a point attribute), like the engine's rasterizer.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import bpy
import numpy as np

from joker_core.cameras import Camera
from joker_core.conventions import encode_normals
from joker_core.errors import JokerError

from .scene_cameras import apply_camera

FACE_REGION_ATTRIBUTE = "joker_face_region"
_MATERIAL_NAME = "Joker Normal Override"


@dataclass
class NormalMap:
    rgb: np.ndarray   # H x W x 3 uint8, encoded per the conventions
    mask: np.ndarray  # H x W bool


def _override_material(face_only: bool) -> bpy.types.Material:
    material = bpy.data.materials.get(_MATERIAL_NAME) or bpy.data.materials.new(_MATERIAL_NAME)
    material.use_nodes = True
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    geometry = nodes.new("ShaderNodeNewGeometry")
    to_camera = nodes.new("ShaderNodeVectorTransform")
    to_camera.vector_type, to_camera.convert_from, to_camera.convert_to = "NORMAL", "WORLD", "CAMERA"
    encode = nodes.new("ShaderNodeVectorMath")
    encode.operation = "MULTIPLY_ADD"
    # Shader camera space looks along +z; ours has z toward the viewer, hence -0.5 on z.
    encode.inputs[1].default_value = (0.5, 0.5, -0.5)
    encode.inputs[2].default_value = (0.5, 0.5, 0.5)
    emission = nodes.new("ShaderNodeEmission")
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(geometry.outputs["Normal"], to_camera.inputs["Vector"])
    links.new(to_camera.outputs["Vector"], encode.inputs[0])
    links.new(encode.outputs["Vector"], emission.inputs["Color"])
    surface = emission.outputs["Emission"]
    if face_only:
        region = nodes.new("ShaderNodeAttribute")
        region.attribute_name = FACE_REGION_ATTRIBUTE
        inside = nodes.new("ShaderNodeMath")
        inside.operation, inside.inputs[1].default_value = "GREATER_THAN", 0.999
        mix = nodes.new("ShaderNodeMixShader")
        holdout = nodes.new("ShaderNodeHoldout")
        links.new(region.outputs["Fac"], inside.inputs[0])
        links.new(inside.outputs["Value"], mix.inputs["Fac"])
        links.new(holdout.outputs["Holdout"], mix.inputs[1])
        links.new(surface, mix.inputs[2])
        surface = mix.outputs["Shader"]
    links.new(surface, output.inputs["Surface"])
    return material


def _configure_render(scene: bpy.types.Scene) -> None:
    render = scene.render
    render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 1
    scene.cycles.use_denoising = False
    scene.cycles.max_bounces = 0
    scene.cycles.filter_width = 0.01  # one point sample at the pixel centre, like the engine
    scene.cycles.use_adaptive_sampling = False
    render.film_transparent = True
    render.use_compositing = False
    render.use_sequencer = False
    settings = render.image_settings
    settings.file_format = "OPEN_EXR"
    settings.color_mode = "RGBA"
    settings.color_depth = "32"


def _read_exr(path: str, width: int, height: int) -> np.ndarray:
    image = bpy.data.images.load(path, check_existing=False)
    try:
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return pixels.reshape(height, width, 4)[::-1]  # Blender stores rows bottom-up


def render_normal_maps(scene: bpy.types.Scene, rig_object: bpy.types.Object,
                       cameras: list[Camera], mode: str = "full") -> list[NormalMap]:
    """Render `rig_object` (posed, evaluated) alone from each camera. Scene render settings,
    camera and visibility are restored afterwards."""
    if mode not in ("full", "face"):
        raise ValueError(f"mode must be 'full' or 'face', not {mode!r}")
    if mode == "face" and FACE_REGION_ATTRIBUTE not in rig_object.data.attributes:
        raise JokerError(f"{rig_object.name} has no face region (its model's eye joints coincide)",
                         "choose Full head normal maps in the Views panel")
    view_layer = scene.view_layers[0]
    view_layer.update()  # a freshly parented or moved rig has a stale matrix_world until then
    saved = _SceneState(scene, view_layer)
    hidden = [o for o in scene.objects if o is not rig_object and o.type in {"MESH", "CURVE", "SURFACE", "META", "FONT"}
              and not o.hide_render]
    cam_data = bpy.data.cameras.new("Joker Normal Camera")
    cam_object = bpy.data.objects.new("Joker Normal Camera", cam_data)
    scene.collection.objects.link(cam_object)
    maps: list[NormalMap] = []
    try:
        for obj in hidden:
            obj.hide_render = True
        _configure_render(scene)
        view_layer.material_override = _override_material(mode == "face")
        scene.camera = cam_object
        rig_matrix = np.array(rig_object.matrix_world)
        with tempfile.TemporaryDirectory(prefix="joker-normals-") as tmp:
            for index, camera in enumerate(cameras):
                apply_camera(camera, cam_object, rig_matrix, scene)
                scene.render.filepath = os.path.join(tmp, f"view_{index:03d}.exr")
                bpy.ops.render.render(write_still=True)
                rgba = _read_exr(scene.render.filepath, camera.width, camera.height)
                mask = rgba[..., 3] > 0.5
                maps.append(NormalMap(encode_normals(rgba[..., :3] * 2.0 - 1.0, mask), mask))
    finally:
        for obj in hidden:
            obj.hide_render = False
        bpy.data.objects.remove(cam_object)
        bpy.data.cameras.remove(cam_data)
        saved.restore()
    return maps


class _SceneState:
    """The render settings this module changes, to put back exactly as they were."""

    _RENDER = ("engine", "film_transparent", "use_compositing", "use_sequencer", "filepath",
               "resolution_x", "resolution_y", "resolution_percentage", "pixel_aspect_x", "pixel_aspect_y")
    _CYCLES = ("device", "samples", "use_denoising", "max_bounces", "filter_width", "use_adaptive_sampling")
    _IMAGE = ("file_format", "color_mode", "color_depth")

    def __init__(self, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer):
        self.scene, self.view_layer = scene, view_layer
        self.camera, self.override = scene.camera, view_layer.material_override
        self.values = [(owner, name, getattr(owner, name))
                       for owner, names in ((scene.render, self._RENDER), (scene.cycles, self._CYCLES),
                                            (scene.render.image_settings, self._IMAGE))
                       for name in names]

    def restore(self) -> None:
        for owner, name, value in self.values:
            setattr(owner, name, value)
        self.scene.camera, self.view_layer.material_override = self.camera, self.override

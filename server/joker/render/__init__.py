"""Rendering without OpenGL: a torch rasterizer and the normal/mask/depth maps built on it.

    fragments = rasterize(world_to_camera(vertices, camera), faces, camera)
    colours = interpolate(vertex_colours, faces, fragments)
    normal_map = render_normal_map(vertices, faces, camera)
"""

from .normal_maps import NormalMap, render_normal_map, vertex_normals
from .raster import Fragments, interpolate, rasterize, world_to_camera

__all__ = ["Fragments", "NormalMap", "interpolate", "rasterize", "render_normal_map",
           "vertex_normals", "world_to_camera"]

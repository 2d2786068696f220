"""The texture from the pictures: every texel takes the colour the views' images show at
its surface point, weighted by how squarely and whether each view sees it. Where no view
looks squarely (the back of the head), texels take the membrane (harmonic) fill of the
seen colours over the surface, not the field's colour: nothing trained the field there,
and its colour carries a ghost of the face (docs/mesh.md, "Back of the head").

The field is fitted to the same images, but through a few samples per ray at a low
resolution; reading the images directly keeps their detail. Views are the distillation's
final targets and cameras (or any images with their cameras, e.g. photos).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F

from joker_core.cameras import Camera
from joker_core.errors import JokerError

from ..prior.projection.texture import SurfaceSamples, harmonic_fill
from ..render.raster import rasterize, world_to_camera
from ..render.texels import fill_empty_texels
from .bake import GUTTER, TexelHits, rasterize_uv
from .export import TexturedMesh

VISIBILITY_SIDE = 512   # px at most of the depth maps that decide what each view sees: twice the image
DEPTH_TOLERANCE = 0.002  # metres a point may lie behind the surface a view sees there
MAX_TOLERANCE = 0.01     # metres, however grazing the view
SHARPNESS = 4.0          # weight = cos(view angle) ** SHARPNESS: square views win
BEHIND_WEIGHT = 0.02     # the colour behind (fill, or the field's): it shows where views only graze or miss
MIN_SEEN = 0.5           # summed view weight (one square view: 1) from which a texel anchors the fill


def _resized(camera: Camera, side: int) -> Camera:
    scale = side / max(camera.width, camera.height)
    width, height = max(1, round(camera.width * scale)), max(1, round(camera.height * scale))
    sx, sy = width / camera.width, height / camera.height
    return Camera(camera.c2w, camera.fx * sx, camera.fy * sy, camera.cx * sx, camera.cy * sy, width, height)


def _view_weights(mesh: TexturedMesh, points: np.ndarray, normals: np.ndarray,
                  camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indices, weights, pixels) of the points one view sees: in the image, facing the
    camera and on the surface the camera sees there. float32 throughout: ~1M texels x views."""
    to_camera = camera.c2w[:3, 3].astype(np.float32) - points
    distance = np.sqrt(np.einsum("ij,ij->i", to_camera, to_camera))
    facing = np.einsum("ij,ij->i", normals, to_camera) / np.maximum(distance, 1e-9)
    index = np.flatnonzero(facing > 0)
    facing = facing[index]
    w2c = camera.w2c.astype(np.float32)
    local = points[index] @ w2c[:3, :3].T + w2c[:3, 3]
    depth = np.maximum(-local[:, 2], 1e-9)
    pixels = np.stack([camera.fx * local[:, 0] / depth + camera.cx, camera.cy - camera.fy * local[:, 1] / depth], 1)
    inside = (local[:, 2] < 0) & (pixels >= 0).all(1) & (pixels[:, 0] < camera.width) & (pixels[:, 1] < camera.height)
    small = _resized(camera, min(VISIBILITY_SIDE, 2 * max(camera.width, camera.height)))
    vertices = torch.as_tensor(mesh.vertices, dtype=torch.float32)
    depth_map = rasterize(world_to_camera(vertices, small), torch.as_tensor(mesh.faces), small).depth.numpy()
    scale = small.width / camera.width
    column = np.clip((pixels[:, 0] * scale).astype(np.int64), 0, small.width - 1)
    row = np.clip((pixels[:, 1] * scale).astype(np.int64), 0, small.height - 1)
    seen_depth = depth_map[row, column]
    # A depth-map pixel spans depth/fx metres; on a slope its depth varies by that times tan(angle).
    slope = np.sqrt(np.clip(1 - facing ** 2, 0, 1)) / np.maximum(facing, 1e-3)
    tolerance = np.minimum(DEPTH_TOLERANCE + depth / small.fx * slope, MAX_TOLERANCE)
    visible = inside & (seen_depth > 0) & (depth <= seen_depth + tolerance)
    return index[visible], np.minimum(facing[visible], 1) ** SHARPNESS, pixels[visible]


def _sample(image: torch.Tensor, pixels: np.ndarray, camera: Camera) -> np.ndarray:
    """Bilinear colours (N x 3) of a 3 x H x W image at the camera's continuous pixel
    positions (the image may have any size: it covers the camera's frame)."""
    width, height = camera.width, camera.height
    grid = torch.as_tensor(np.stack([pixels[:, 0] / width * 2 - 1, pixels[:, 1] / height * 2 - 1], 1),
                           dtype=torch.float32)
    colours = F.grid_sample(image[None].float(), grid[None, None], mode="bilinear", align_corners=False,
                            padding_mode="border")
    return colours[0, :, 0].T.numpy()


def _membrane_fill(mesh: TexturedMesh, hits: TexelHits, colours: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """Per texel: the harmonic interpolation over the welded surface (UV-split copies of a
    vertex are one) of the colours of texels seen with summed weight `seen` >= MIN_SEEN,
    so the fill runs on across UV seams."""
    welded = mesh.welded_vertices()
    faces = welded[mesh.faces]
    barycentric = hits.on_face().astype(np.float64)  # splat weights must not go negative
    samples = SurfaceSamples(hits.face, barycentric, hits.texel, mesh.texture.shape[0] ** 2)
    confidence = np.where(seen >= MIN_SEEN, np.minimum(seen, 1.0), 0.0)
    per_vertex = harmonic_fill(faces, int(welded.max()) + 1, samples, colours, confidence)
    return np.einsum("nk,nkd->nd", barycentric, per_vertex[faces[hits.face]])


def project_views(mesh: TexturedMesh, cameras: Sequence[Camera], images: torch.Tensor,
                  fill_unseen: bool = True, gutter: float = GUTTER) -> TexturedMesh:
    """`mesh` with its texture taken from `images` (N x 3 x H x W in [0, 1], one per camera)
    where they see the surface and filled from there where they do not (or, without
    `fill_unseen`, kept as it was there); unchanged if no view sees any texel squarely."""
    if len(cameras) != len(images) or images.ndim != 4 or images.shape[1] != 3:
        raise JokerError(f"{len(cameras)} cameras for images of shape {tuple(images.shape)}",
                         "pass one RGB image (N x 3 x H x W) per camera")
    size = mesh.texture.shape[0]
    hits = rasterize_uv(mesh.uvs, mesh.faces, size, gutter)
    corners = mesh.faces[hits.face]
    weights = hits.barycentric.astype(np.float32)
    points = np.einsum("nk,nkd->nd", weights, mesh.vertices[corners].astype(np.float32))
    normals = np.einsum("nk,nkd->nd", weights, mesh.normals[corners].astype(np.float32))
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    total = np.zeros(len(points))
    colour = np.zeros((len(points), 3))
    for camera, image in zip(cameras, images.detach().cpu()):
        seen, weight, pixels = _view_weights(mesh, points, normals, camera)
        total[seen] += weight
        colour[seen] += weight[:, None] * _sample(image, pixels, camera)
    if not (total >= MIN_SEEN).any():
        return mesh
    texture = mesh.texture.reshape(-1, 3) / 255.0
    behind = (_membrane_fill(mesh, hits, colour / np.maximum(total, 1e-12)[:, None], total) if fill_unseen
              else texture[hits.texel])
    texture[hits.texel] = (colour + BEHIND_WEIGHT * behind) / (total + BEHIND_WEIGHT)[:, None]
    covered = np.zeros(size * size, bool)
    covered[hits.texel] = True
    filled = fill_empty_texels(texture.reshape(size, size, 3), covered.reshape(size, size))
    return dataclasses.replace(mesh, texture=np.rint(np.clip(filled, 0, 1) * 255).astype(np.uint8))

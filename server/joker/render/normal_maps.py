"""Camera-space normal maps, foreground masks and depth of a posed mesh (design.md §2).

Normals are smooth: angle-weighted vertex normals (Blender's rule, so the add-on's in-scene
renders agree), interpolated with perspective-correct barycentrics and renormalised, then
expressed in camera axes (x right, y up, z toward the viewer).

"face" mode draws the whole head, so the scalp, ears and neck still occlude, and then
blanks every pixel whose triangle is not wholly inside the face region: the same as the
add-on's holdout material.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from joker_core.cameras import Camera
from joker_core.conventions import encode_normals

from .raster import Fragments, interpolate, rasterize, world_to_camera


@dataclass(frozen=True)
class NormalMap:
    normals: torch.Tensor  # H x W x 3 unit camera-space normals, zero on the background
    mask: torch.Tensor     # H x W bool foreground
    depth: torch.Tensor    # H x W distance along the viewing axis, zero on the background

    def encoded(self) -> np.ndarray:
        """H x W x 3 uint8 RGB, the PNG form shared with the add-on."""
        return encode_normals(self.normals.detach().cpu().numpy(), self.mask.cpu().numpy())

    def as_image(self) -> torch.Tensor:
        """3 x H x W float in [0, 1] on the maps' device, exactly `encoded() / 255`
        (background 0): the prior sees the same quantised values as a PNG from Blender."""
        levels = torch.from_numpy(self.encoded()).to(self.normals.device)
        return levels.permute(2, 0, 1).float() / 255.0


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """V x 3 unit normals: face normals summed with each corner's angle as weight."""
    corners = vertices[faces]  # F x 3 x 3
    to_next = corners.roll(-1, dims=1) - corners
    to_prev = corners.roll(1, dims=1) - corners
    face_normal = torch.linalg.cross(to_next[:, 0], to_prev[:, 0])  # (v1 - v0) x (v2 - v0)
    face_normal = face_normal / face_normal.norm(dim=1, keepdim=True).clamp(min=1e-20)
    cosine = (to_next * to_prev).sum(-1) / (to_next.norm(dim=-1) * to_prev.norm(dim=-1)).clamp(min=1e-20)
    angle = torch.arccos(cosine.clamp(-1.0, 1.0))  # F x 3
    weighted = angle.unsqueeze(-1) * face_normal.unsqueeze(1)  # F x 3 x 3
    normals = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), weighted.reshape(-1, 3))
    return normals / normals.norm(dim=1, keepdim=True).clamp(min=1e-20)


def render_normal_map(vertices: torch.Tensor, faces: torch.Tensor, camera: Camera, *,
                      drawn_faces: torch.Tensor | None = None) -> NormalMap:
    """Normal map of a world-space mesh V x 3 / F x 3 seen by `camera`.

    `drawn_faces` (F bool), if given, keeps only the pixels that see those triangles;
    the others become background (the face-region mode).
    """
    faces = faces.to(device=vertices.device, dtype=torch.int64)
    vertices_cam = world_to_camera(vertices, camera)
    fragments = rasterize(vertices_cam, faces, camera)
    normals = interpolate(vertex_normals(vertices_cam, faces), faces, fragments)
    return _normal_map(normals, _visible(fragments, drawn_faces), fragments.depth)


def _visible(fragments: Fragments, drawn_faces: torch.Tensor | None) -> torch.Tensor:
    if drawn_faces is None:
        return fragments.mask
    drawn = drawn_faces.to(fragments.triangle_id.device)
    return fragments.mask & drawn[fragments.triangle_id.clamp(min=0)]


def _normal_map(normals: torch.Tensor, mask: torch.Tensor, depth: torch.Tensor) -> NormalMap:
    unit = normals / normals.norm(dim=-1, keepdim=True).clamp(min=1e-20)
    keep = mask.unsqueeze(-1)
    return NormalMap(torch.where(keep, unit, torch.zeros_like(unit)), mask,
                     torch.where(mask, depth, torch.zeros_like(depth)))

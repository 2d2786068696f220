"""The rig's UV layout and a registered head textured in it.

The demo head brings its own UVs (HeadModel.uv_coords / uv_faces). A FLAME file without
UVs gets one xatlas atlas of its template, made once per model and texture size and reused
for every head and frame, so all of a model's registered heads share one layout.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import trimesh

from joker_core.cameras import Camera
from joker_core.head_model import HeadModel

from .bake import bake_texture
from .export import TexturedMesh
from .fields import ColorField
from .pipeline import MeshSettings
from .project import project_views
from .unwrap import UVMesh, unwrap


@dataclass(frozen=True)
class UVLayout:
    """A rig's faces split along UV seams; `source_vertex` maps each split vertex to the rig's."""

    source_vertex: np.ndarray  # V' int64
    faces: np.ndarray          # F x 3 int64 into the split vertices, the rig's face order
    uvs: np.ndarray            # V' x 2, origin bottom-left

    def uv_mesh(self, rig_vertices: np.ndarray) -> UVMesh:
        return UVMesh(np.asarray(rig_vertices, np.float64)[self.source_vertex], self.faces, self.uvs,
                      self.source_vertex, chart_count=0)


def _from_model_uvs(model: HeadModel) -> UVLayout:
    corners = np.stack([np.asarray(model.faces).ravel(), np.asarray(model.uv_faces).ravel()], axis=1)
    pairs, inverse = np.unique(corners, axis=0, return_inverse=True)
    return UVLayout(pairs[:, 0].astype(np.int64), inverse.reshape(-1, 3).astype(np.int64),
                    np.asarray(model.uv_coords, np.float64)[pairs[:, 1]])


def _from_atlas(model: HeadModel, texture_size: int) -> UVLayout:
    atlas = unwrap(model.v_template, np.asarray(model.faces, np.int64), texture_size)
    return UVLayout(atlas.source_vertex, atlas.faces, atlas.uvs)


_layouts: dict[tuple, UVLayout] = {}


def rig_uv_layout(model: HeadModel, texture_size: int) -> UVLayout:
    """The model's UV layout: its own UVs, else its xatlas atlas (made once, then reused)."""
    digest = hashlib.sha1(np.ascontiguousarray(model.faces).tobytes())
    if model.uv_coords is not None:
        digest.update(np.ascontiguousarray(model.uv_coords).tobytes())
        key = ("uvs", digest.hexdigest())
    else:
        digest.update(np.ascontiguousarray(model.v_template).tobytes())
        key = ("atlas", digest.hexdigest(), texture_size)
    if key not in _layouts:
        _layouts[key] = _from_model_uvs(model) if model.uv_coords is not None else _from_atlas(model, texture_size)
    return _layouts[key]


def textured_rig_mesh(model: HeadModel, vertices: np.ndarray, color: ColorField, settings: MeshSettings,
                      views: tuple[Sequence[Camera], torch.Tensor] | None = None) -> TexturedMesh:
    """The rig's topology at `vertices`, textured in the rig's UV layout as
    `build_textured_mesh` textures its surface: `color` baked, then `views` (cameras, images)
    projected wherever they see it."""
    uv_mesh = rig_uv_layout(model, settings.texture_size).uv_mesh(vertices)
    texture = bake_texture(uv_mesh, color, settings.texture_size, gutter=settings.texture_gutter,
                           chunk_size=settings.chunk_size, device=settings.device)
    welded = trimesh.Trimesh(np.asarray(vertices, np.float64), np.asarray(model.faces), process=False)
    mesh = TexturedMesh.from_uv_mesh(uv_mesh, np.asarray(welded.vertex_normals), texture)
    if views is None:
        return mesh
    return project_views(mesh, *views, fill_unseen=settings.fill_unseen, gutter=settings.texture_gutter)

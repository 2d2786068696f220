"""UV atlas with xatlas: charts cut, flattened and packed into one square texture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xatlas

from joker_core.errors import JokerError

MIN_TEXTURE_SIZE, MAX_TEXTURE_SIZE = 64, 8192
# Share of the texture the charts are sized to cover. xatlas packs heads at ~0.7 of its
# atlas, so asking for 0.5 keeps the atlas at or under the texture size: the padding
# stays at least as wide as asked, and about 55% of the texels carry the surface.
TARGET_FILL = 0.5
# Chart growth limit. Measured on the 20k-face analytic head of bench_mesh.py: xatlas's
# default 2.0 gives 385 charts in 2.9 s CPU; 1.0 gives 217 charts, less stretch and more
# texels on the surface in 1.7 s.
MAX_CHART_COST = 1.0


@dataclass(frozen=True)
class UVMesh:
    """A mesh split along its UV seams.

    `uvs` are in [0, 1] with the origin at the bottom-left of the image (OpenGL, trimesh
    and, after their flip, glTF); `source_vertex` maps every vertex to the unsplit input.
    """

    vertices: np.ndarray       # V x 3 float64, world
    faces: np.ndarray          # F x 3 int64
    uvs: np.ndarray            # V x 2 float64
    source_vertex: np.ndarray  # V int64
    chart_count: int


def check_texture_size(texture_size: int) -> None:
    if not MIN_TEXTURE_SIZE <= texture_size <= MAX_TEXTURE_SIZE:
        raise JokerError(f"texture size {texture_size} is outside {MIN_TEXTURE_SIZE}..{MAX_TEXTURE_SIZE}",
                         "pick a texture size such as 1024 or 2048")


def surface_area(vertices: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = (vertices[faces[:, i]] for i in range(3))
    return float(np.linalg.norm(np.cross(b - a, c - a), axis=1).sum() / 2)


def unwrap(vertices: np.ndarray, faces: np.ndarray, texture_size: int, padding: int = 2) -> UVMesh:
    """Chart and pack the mesh for a `texture_size`^2 texture, about `padding` texels between charts.

    The atlas is sized through the texel density (xatlas's own estimate from a target
    resolution leaves most of the texture empty) and normalised to [0, 1].
    """
    check_texture_size(texture_size)
    pack = xatlas.PackOptions()
    pack.texels_per_unit = texture_size * np.sqrt(TARGET_FILL / surface_area(vertices, faces))
    pack.padding = padding
    pack.bilinear = True
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.uint32))
    charts = xatlas.ChartOptions()
    charts.max_cost = MAX_CHART_COST
    atlas.generate(charts, pack)
    if atlas.atlas_count != 1:
        raise JokerError(f"the UV atlas needed {atlas.atlas_count} textures instead of one",
                         "use a larger texture size or a smaller face budget")
    source_vertex, uv_faces, uvs = atlas[0]
    source_vertex = source_vertex.astype(np.int64)
    return UVMesh(vertices=np.asarray(vertices, np.float64)[source_vertex], faces=uv_faces.astype(np.int64),
                  uvs=uvs.astype(np.float64), source_vertex=source_vertex, chart_count=atlas.chart_count)

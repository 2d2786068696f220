"""UV atlas with xatlas: charts cut, flattened and packed into one square texture."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xatlas

from joker_core.errors import JokerError

from .charts import head_charts

MIN_TEXTURE_SIZE, MAX_TEXTURE_SIZE = 64, 8192
# Share of the texture the charts are sized to cover. xatlas packs heads at ~0.7 of its
# atlas, so asking for 0.5 keeps the atlas at or under the texture size: the padding
# stays at least as wide as asked, and about 55% of the texels carry the surface.
TARGET_FILL = 0.5
MILLIMETRES_PER_METRE = 1000.0
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


def _atlas(vertices: np.ndarray, faces: np.ndarray, texture_size: int, padding: int,
           uvs: np.ndarray | None = None) -> xatlas.Atlas:
    """xatlas over the mesh: charts of its own making, or the islands of `uvs` (per vertex).

    Positions go in as millimetres: xatlas ignores faces under a fixed area epsilon
    (~1e-7), which in metres drops sub-millimetre faces (the nose tip, closed holes) to
    UV (0, 0), where they show as dark specks and cracks."""
    vertices = np.asarray(vertices, np.float64) * MILLIMETRES_PER_METRE
    pack = xatlas.PackOptions()
    pack.texels_per_unit = texture_size * np.sqrt(TARGET_FILL / surface_area(vertices, faces))
    pack.padding = padding
    pack.bilinear = True
    atlas = xatlas.Atlas()
    atlas.add_mesh(np.ascontiguousarray(vertices, np.float32), np.ascontiguousarray(faces, np.uint32),
                   None, None if uvs is None else np.ascontiguousarray(uvs, np.float32))
    charts = xatlas.ChartOptions()
    charts.max_cost = MAX_CHART_COST
    charts.use_input_mesh_uvs = uvs is not None
    atlas.generate(charts, pack)
    if atlas.atlas_count != 1:
        raise JokerError(f"the UV atlas needed {atlas.atlas_count} textures instead of one",
                         "use a larger texture size or a smaller face budget")
    return atlas


def _uv_mesh(vertices: np.ndarray, atlas: xatlas.Atlas, source_vertex: np.ndarray | None = None) -> UVMesh:
    mapping, uv_faces, uvs = atlas[0]
    mapping = mapping.astype(np.int64)
    source = mapping if source_vertex is None else source_vertex[mapping]
    return UVMesh(vertices=np.asarray(vertices, np.float64)[source], faces=uv_faces.astype(np.int64),
                  uvs=uvs.astype(np.float64), source_vertex=source, chart_count=atlas.chart_count)


def unwrap(vertices: np.ndarray, faces: np.ndarray, texture_size: int, padding: int = 2,
           centre: np.ndarray | None = None) -> UVMesh:
    """Chart and pack the mesh for a `texture_size`^2 texture, about `padding` texels between charts.

    With the head's `centre`, the charts are the head's few large ones (charts.py) and
    xatlas only packs them (and charts the few faces they leave); without it, xatlas cuts
    its own (hundreds on a head). The atlas is sized through the texel density (xatlas's
    own estimate from a target resolution leaves most of the texture empty) and
    normalised to [0, 1].
    """
    check_texture_size(texture_size)
    if centre is None:
        return _uv_mesh(vertices, _atlas(vertices, faces, texture_size, padding))
    charts, rest = head_charts(vertices, faces, centre)
    # Each chart's corners name their vertex; a vertex gets one copy (and UV) per chart.
    pieces = [(chart.faces, faces[chart.faces], chart.uvs) for chart in charts]
    source_of = np.arange(len(vertices))
    if len(rest):  # xatlas charts the faces LSCM folded; their corners name its split vertices
        used, local = np.unique(faces[rest], return_inverse=True)
        leftover = _uv_mesh(vertices[used], _atlas(vertices[used], local.reshape(-1, 3), texture_size, padding))
        pieces.append((rest, leftover.faces + len(vertices), leftover.uvs[leftover.faces]))
        source_of = np.concatenate([source_of, used[leftover.source_vertex]])
    corner = np.concatenate([names for _, names, _ in pieces]).ravel()
    chart = np.repeat(np.arange(len(pieces)), [names.size for _, names, _ in pieces])
    _, first, split_faces = np.unique(np.stack([chart, corner], axis=1), axis=0, return_index=True,
                                      return_inverse=True)
    split_source = source_of[corner[first]]
    split_uvs = np.concatenate([uvs for _, _, uvs in pieces]).reshape(-1, 2)[first]
    mesh_faces = np.concatenate([piece for piece, _, _ in pieces])
    atlas = _atlas(vertices[split_source], split_faces.reshape(-1, 3), texture_size, padding, split_uvs)
    del mesh_faces  # the atlas keeps the faces' order: no mapping back needed
    return _uv_mesh(vertices, atlas, split_source)

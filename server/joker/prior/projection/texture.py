"""The head's colours from one photo: back-projection, mirroring, smooth fill.

Colours live on surface samples of the NEUTRAL head: the texels of its UV layout, or its
vertices when it has no UVs (then the result is per-vertex colour). Each sample takes, in
order of trust:
1. the photo's colour where the photo's camera sees it (depth test, not grazing), on
   vertices the head trusts the photo for (its face region) and inside the photo's mask
   (the face area found by the alignment);
2. the photo's colour at its mirror image x -> -x (FLAME's symmetry plane) if that is seen;
3. the mouth interior's dark colour, for faces labelled so, unless the photo itself shows
   them (an open mouth, with the head posed as in the photo);
4. a harmonic (membrane) fill over the mesh from the vertices the first three coloured,
   so the fill follows the surface, not the UV layout, and never bleeds across seams.
Texels outside every UV island copy their nearest island texel, so bilinear lookups at
seams never see black.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Callable

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
import torch.nn.functional as F

from joker.render.normal_maps import vertex_normals
from joker.render.raster import Fragments, interpolate, rasterize, world_to_camera
from joker.render.texels import fill_empty_texels
from joker_core.cameras import Camera
from joker_core.errors import JokerError

MOUTH_INTERIOR_COLOR = (0.16, 0.05, 0.05)  # RGB in [0, 1]: a dark, slightly red cavity
MIN_FACING = 0.25          # cos of the angle to the camera below which a view is too grazing
FEATHER = 0.25             # photo colours fade in over this range of cos above MIN_FACING
DEPTH_TOLERANCE = 0.002    # m: how far behind the visible surface a sample still counts as seen
VISIBILITY_SIDE = 1024     # px: the depth test runs at most at this resolution
MIN_TEXTURE_SIZE, MAX_TEXTURE_SIZE = 16, 8192


class Origin(enum.IntEnum):
    """Where a sample's colour came from (kept for inspection and tests)."""

    OUTSIDE = 0  # texel outside every UV island (padded from its nearest island texel)
    PHOTO = 1
    MIRROR = 2
    MOUTH = 3
    FILL = 4


@dataclass(frozen=True)
class Surface:
    """The neutral head as the texture sees it (FLAME frame, metres)."""

    vertices: np.ndarray                # N x 3
    faces: np.ndarray                   # F x 3
    uv_coords: np.ndarray | None = None  # T x 2 in [0, 1], origin bottom-left
    uv_faces: np.ndarray | None = None   # F x 3 into uv_coords
    dark_faces: np.ndarray | None = None  # F bool: mouth interior
    trusted_vertices: np.ndarray | None = None  # N bool: where the photo is believed (face region)


@dataclass(frozen=True)
class HeadTexture:
    """A UV image (`image`, row 0 at v = 1) when the surface has UVs, else per-vertex colours."""

    image: np.ndarray | None          # S x S x 3 float32 in [0, 1]
    vertex_colors: np.ndarray | None  # N x 3 float32 in [0, 1]
    origin: np.ndarray                # S x S or N uint8 of Origin values


@dataclass(frozen=True)
class SurfaceSamples:
    """Points on the mesh where colours are stored: texel centres or vertices."""

    face: np.ndarray          # K: the face each sample lies on
    barycentric: np.ndarray   # K x 3
    index: np.ndarray         # K: where the sample is stored (flat texel or vertex id)
    count: int                # number of storage slots (texels or vertices)


def bake_texture(surface: Surface, photo: np.ndarray, camera: Camera, size: int = 512,
                 photo_mask: Callable[[np.ndarray], np.ndarray] | None = None) -> HeadTexture:
    """Colour every texel (or vertex) of `surface` from `photo` seen through `camera`;
    `photo_mask(pixels N x 2) -> N bool` limits which photo pixels may be used."""
    if not MIN_TEXTURE_SIZE <= size <= MAX_TEXTURE_SIZE:
        raise JokerError(f"texture size {size} is outside {MIN_TEXTURE_SIZE}..{MAX_TEXTURE_SIZE}",
                         "use a texture size such as 512 or 1024")
    has_uv = surface.uv_coords is not None
    samples = texel_samples(surface, size) if has_uv else vertex_samples(surface)
    vertices = surface.vertices.astype(np.float64)
    points = _at(vertices, surface.faces, samples)
    normals = _at(vertex_normals(torch.from_numpy(vertices), torch.from_numpy(surface.faces)).numpy(),
                  surface.faces, samples)
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    depth = _depth_map(vertices, surface.faces, camera)
    trusted = np.ones(len(points), bool)
    if surface.trusted_vertices is not None:
        trusted = _at(surface.trusted_vertices.astype(np.float64), surface.faces, samples) > 0.5

    colors = np.zeros((len(points), 3))
    confidence = np.zeros(len(points))
    origin = np.full(len(points), Origin.FILL, np.uint8)
    mirror = np.array([-1.0, 1.0, 1.0])
    for kind, sign in ((Origin.PHOTO, 1.0), (Origin.MIRROR, mirror)):
        pending = np.flatnonzero(origin == Origin.FILL)
        weight, sampled = _project(points[pending] * sign, normals[pending] * sign, photo, camera,
                                   depth, photo_mask)
        seen = (weight > 0) & trusted[pending]
        take = pending[seen]
        colors[take], confidence[take], origin[take] = sampled[seen], weight[seen], kind
    if surface.dark_faces is not None:
        dark = surface.dark_faces[samples.face] & (origin != Origin.PHOTO)
        colors[dark], confidence[dark], origin[dark] = MOUTH_INTERIOR_COLOR, 1.0, Origin.MOUTH

    # The fill reaches into the known samples too, so grazing photo colours fade into it.
    per_vertex = harmonic_fill(surface.faces, len(vertices), samples, colors, confidence)
    fill = _at(per_vertex, surface.faces, samples)
    colors = confidence[:, None] * colors + (1.0 - confidence[:, None]) * fill

    if not has_uv:
        return HeadTexture(None, colors.astype(np.float32), origin)
    image = np.zeros((samples.count, 3))
    texel_origin = np.full(samples.count, Origin.OUTSIDE, np.uint8)
    image[samples.index], texel_origin[samples.index] = colors, origin
    image = fill_empty_texels(image.reshape(size, size, 3), texel_origin.reshape(size, size) != Origin.OUTSIDE)
    return HeadTexture(image.astype(np.float32), None, texel_origin.reshape(size, size))


def harmonic_fill(faces: np.ndarray, n_vertices: int, samples: SurfaceSamples, colors: np.ndarray,
                  confidence: np.ndarray, anchor: float = 1e-4) -> np.ndarray:
    """Per-vertex colours: the known samples' colours (confidence > 0) splatted onto their
    triangle's corners, weighted by confidence, and the membrane (graph-Laplace)
    interpolation of those into every other vertex. `anchor` pulls parts with no known
    vertex to the mean colour."""
    known = confidence > 0
    corners = faces[samples.face[known]].ravel()
    weights = (samples.barycentric[known] * confidence[known, None]).ravel()
    totals = np.bincount(corners, weights, n_vertices)
    sums = np.stack([np.bincount(corners, weights * np.repeat(colors[known][:, c], 3), n_vertices)
                     for c in range(3)], axis=1)
    fixed = totals > 1e-6
    values = np.zeros((n_vertices, 3))
    values[fixed] = sums[fixed] / totals[fixed, None]
    free = np.flatnonzero(~fixed)
    if len(free) == 0:
        return values
    mean = values[fixed].mean(0) if fixed.any() else np.full(3, 0.5)
    laplacian = _graph_laplacian(faces, n_vertices)
    system = laplacian[free][:, free] + anchor * scipy.sparse.identity(len(free))
    rhs = -laplacian[free][:, np.flatnonzero(fixed)] @ values[fixed] + anchor * mean
    values[free] = scipy.sparse.linalg.spsolve(system.tocsc(), rhs).reshape(len(free), 3)
    return values


def _graph_laplacian(faces: np.ndarray, n_vertices: int) -> scipy.sparse.csr_matrix:
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    adjacency = scipy.sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])),
                                        shape=(n_vertices, n_vertices)).tocsr()
    adjacency.data[:] = 1.0  # shared edges were summed twice
    degree = np.asarray(adjacency.sum(1)).ravel()
    return (scipy.sparse.diags(degree) - adjacency).tocsr()


def texel_samples(surface: Surface, size: int) -> SurfaceSamples:
    """The texel centres covered by the UV layout, by rasterizing it: with every corner at
    depth 1 and this camera, the 'projection' is the UV-to-pixel map (row 0 at v = 1)."""
    uv = torch.as_tensor(surface.uv_coords, dtype=torch.float64)
    flat = torch.cat([uv, -torch.ones(len(uv), 1, dtype=torch.float64)], dim=1)
    uv_camera = Camera(np.eye(4), float(size), float(size), 0.0, float(size), size, size)
    fragments = rasterize(flat.float(), torch.as_tensor(surface.uv_faces), uv_camera)
    covered = fragments.mask.flatten()
    return SurfaceSamples(fragments.triangle_id.flatten()[covered].numpy(),
                    fragments.barycentrics.reshape(-1, 3)[covered].double().numpy(),
                    np.flatnonzero(covered.numpy()), size * size)


def vertex_samples(surface: Surface) -> SurfaceSamples:
    """One sample per vertex, on the first face that uses it."""
    n = len(surface.vertices)
    flat_faces = surface.faces.ravel()
    first = np.full(n, -1)
    first[flat_faces[::-1]] = np.arange(len(flat_faces))[::-1]  # earliest occurrence wins
    used = np.flatnonzero(first >= 0)
    barycentric = np.zeros((len(used), 3))
    barycentric[np.arange(len(used)), first[used] % 3] = 1.0
    return SurfaceSamples(first[used] // 3, barycentric, used, n)


def _at(values: np.ndarray, faces: np.ndarray, samples: SurfaceSamples) -> np.ndarray:
    """Per-vertex values interpolated at the samples."""
    corners = values[faces[samples.face]]  # K x 3 (x C)
    weights = samples.barycentric if corners.ndim == 2 else samples.barycentric[..., None]
    return (corners * weights).sum(1)


def _depth_map(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> tuple[Camera, np.ndarray]:
    """(the camera at a capped resolution, the depth it sees; inf on the background)."""
    scale = min(1.0, VISIBILITY_SIDE / max(camera.width, camera.height))
    small = resized_camera(camera, max(1, round(camera.width * scale)), max(1, round(camera.height * scale)))
    points = world_to_camera(torch.as_tensor(vertices, dtype=torch.float32), small)
    depth = rasterize(points, torch.as_tensor(faces), small).depth.numpy()
    return small, np.where(depth > 0, depth, np.inf)


def resized_camera(camera: Camera, width: int, height: int) -> Camera:
    """The same camera with its image resized to width x height."""
    sx, sy = width / camera.width, height / camera.height
    return Camera(camera.c2w, camera.fx * sx, camera.fy * sy, camera.cx * sx, camera.cy * sy,
                  width, height)


def _project(points: np.ndarray, normals: np.ndarray, photo: np.ndarray, camera: Camera,
             depth: tuple[Camera, np.ndarray],
             photo_mask: Callable[[np.ndarray], np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    """(weight, colour) of each point. The weight is 0 unless the point is in the image,
    facing the camera, and not behind the surface the camera sees there; it ramps up to 1
    as the view gets less grazing. The depth tolerance grows with the slope of the surface
    across one depth-map pixel, so grazing parts are not speckled by their own surface."""
    small, depth_map = depth
    pixels, distance = camera.project(points)
    to_camera = camera.c2w[:3, 3] - points
    facing = (normals * to_camera).sum(1) / np.maximum(np.linalg.norm(to_camera, axis=1), 1e-12)
    seen = (distance > 0) & (facing > MIN_FACING)
    seen &= (pixels[:, 0] >= 0) & (pixels[:, 0] < camera.width)
    seen &= (pixels[:, 1] >= 0) & (pixels[:, 1] < camera.height)
    if photo_mask is not None:
        seen &= photo_mask(pixels)
    small_pixels, _ = small.project(points)
    col = np.clip(small_pixels[:, 0].astype(int), 0, small.width - 1)
    row = np.clip(small_pixels[:, 1].astype(int), 0, small.height - 1)
    footprint = distance / small.fx  # metres per depth-map pixel
    slope = np.sqrt(np.maximum(1.0 - facing ** 2, 0.0)) / np.maximum(facing, MIN_FACING)
    seen &= distance <= depth_map[row, col] + DEPTH_TOLERANCE + 2.0 * footprint * slope
    weight = np.clip((facing - MIN_FACING) / FEATHER, 0.0, 1.0)
    return np.where(seen, np.maximum(weight, 1e-3), 0.0), _bilinear(photo, pixels)


def _bilinear(photo: np.ndarray, pixels: np.ndarray) -> np.ndarray:
    """Photo colours (float in [0, 1]) at pixel coordinates (pixel centres at +0.5)."""
    image = torch.tensor(photo).permute(2, 0, 1)[None].float() / 255.0
    height, width = photo.shape[:2]
    grid = torch.from_numpy(np.stack([pixels[:, 0] / width * 2 - 1, pixels[:, 1] / height * 2 - 1], 1))
    sampled = F.grid_sample(image, grid.float()[None, None], mode="bilinear",
                            padding_mode="border", align_corners=False)
    return sampled[0, :, 0].T.double().numpy()


@dataclass(frozen=True)
class ShadingTables:
    """A baked texture as tensors on one device, ready to colour rasterized fragments of
    the head in any pose (topology and UVs are the neutral head's)."""

    faces: torch.Tensor
    uv_coords: torch.Tensor | None
    uv_faces: torch.Tensor | None
    image: torch.Tensor | None          # 1 x 3 x S x S
    vertex_colors: torch.Tensor | None  # N x 3

    @classmethod
    def build(cls, texture: HeadTexture, surface: Surface, device: torch.device | str = "cpu") -> "ShadingTables":
        def tensor(array, dtype):
            return None if array is None else torch.as_tensor(array, dtype=dtype, device=device)

        image = tensor(texture.image, torch.float32)
        return cls(tensor(surface.faces, torch.int64), tensor(surface.uv_coords, torch.float32),
                   tensor(surface.uv_faces, torch.int64),
                   None if image is None else image.permute(2, 0, 1)[None].contiguous(),
                   tensor(texture.vertex_colors, torch.float32))

    def shade(self, fragments: Fragments) -> torch.Tensor:
        """H x W x 3 colours of what `fragments` see."""
        if self.image is None:
            return interpolate(self.vertex_colors, self.faces, fragments)
        uv = interpolate(self.uv_coords, self.uv_faces, fragments)
        grid = torch.stack([uv[..., 0] * 2 - 1, 1 - uv[..., 1] * 2], -1)[None]
        return F.grid_sample(self.image, grid, mode="bilinear", padding_mode="border",
                             align_corners=False)[0].permute(1, 2, 0)

"""A vectorised triangle rasterizer in torch: no OpenGL, same code on CPU and CUDA.

Two functions in the spirit of nvdiffrast: `rasterize` finds, for every pixel, the nearest
triangle and the perspective-correct barycentrics of the point it sees; `interpolate`
turns any per-vertex attribute (normals, UVs, colours) into an image with them.

How: every triangle gets the pixel bounding box of its visible part; the (triangle, pixel)
candidate pairs are enumerated in chunks; each pair is tested with edge functions of the
*camera ray* against the triangle in 3D (scalar triple products), which gives exact
perspective-correct barycentrics and stays correct for triangles that cross the near
plane or lie partly behind the camera. A depth test with `scatter_reduce(amin)` keeps the
nearest hit; exact depth ties go to the lower triangle id, so results are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from joker_core.cameras import Camera

# Candidate (triangle, pixel) pairs tested at once; bounds peak memory to a few hundred MB.
DEFAULT_MAX_PAIRS = 1 << 22
# Relative size (vs. the edge functions' scale) below which a ray grazes a triangle.
GRAZING_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Fragments:
    """What each pixel sees. Background pixels have triangle_id -1, zero barycentrics and
    zero depth."""

    triangle_id: torch.Tensor   # H x W int64, -1 = background
    barycentrics: torch.Tensor  # H x W x 3 float32, perspective-correct, sum to 1 on hits
    depth: torch.Tensor         # H x W float32, distance along the camera's viewing axis (-z)

    @property
    def mask(self) -> torch.Tensor:
        return self.triangle_id >= 0


def world_to_camera(vertices: torch.Tensor, camera: Camera) -> torch.Tensor:
    """World points V x 3 -> camera-space points (OpenGL axes: x right, y up, looking along -z)."""
    w2c = torch.as_tensor(camera.w2c, dtype=vertices.dtype, device=vertices.device)
    return vertices @ w2c[:3, :3].T + w2c[:3, 3]


def rasterize(vertices_cam: torch.Tensor, faces: torch.Tensor, camera: Camera, *,
              near: float = 1e-3, max_pairs: int = DEFAULT_MAX_PAIRS) -> Fragments:
    """Rasterize a triangle mesh given in camera space (see `world_to_camera`).

    Surfaces closer than `near` (along the viewing axis) are clipped away. Degenerate and
    edge-on triangles cover no pixel. Both faces of a triangle are drawn (no culling).
    """
    device = vertices_cam.device
    height, width = camera.height, camera.width
    depth_buffer = torch.full((height * width,), float("inf"), device=device)
    triangle_buffer = torch.full((height * width,), -1, dtype=torch.int64, device=device)
    bary_buffer = torch.zeros((height * width, 3), device=device)

    faces = faces.to(device=device, dtype=torch.int64)
    setup = _TriangleSetup.build(vertices_cam, faces, camera, near)
    pairs_per_triangle = setup.box_width * setup.box_height
    pair_end = torch.cumsum(pairs_per_triangle, 0)
    total_pairs = int(pair_end[-1]) if len(pair_end) else 0

    for start in range(0, total_pairs, max_pairs):
        pair_ids = torch.arange(start, min(start + max_pairs, total_pairs), device=device)
        # Pairs are numbered triangle by triangle; find each pair's triangle and offset.
        local = torch.searchsorted(pair_end, pair_ids, right=True)
        offset = pair_ids - (pair_end[local] - pairs_per_triangle[local])
        hits = setup.test(local, offset, near)
        _depth_test(hits, width, depth_buffer, triangle_buffer, bary_buffer)

    hit = triangle_buffer >= 0
    # Local ids -> the caller's face ids; the appended -1 maps background (-1) to itself.
    triangle_id = torch.cat([setup.face_ids, setup.face_ids.new_tensor([-1])])[triangle_buffer]
    depth = torch.where(hit, depth_buffer, torch.zeros_like(depth_buffer))
    return Fragments(triangle_id.view(height, width), bary_buffer.view(height, width, 3),
                     depth.view(height, width))


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Per-vertex attributes V x C -> H x W x C image (zero on the background)."""
    faces = faces.to(device=attributes.device, dtype=torch.int64)
    mask = fragments.mask
    corners = attributes[faces[fragments.triangle_id[mask]]]  # P x 3 x C
    values = (fragments.barycentrics[mask].to(attributes.dtype).unsqueeze(-1) * corners).sum(1)
    image = attributes.new_zeros((*mask.shape, attributes.shape[1]))
    image[mask] = values
    return image


@dataclass(frozen=True)
class _TriangleSetup:
    """Per-triangle constants of the triangles that may cover a pixel.

    For the camera ray through a pixel, d = ((u - cx)/fx, -(v - cy)/fy, -1), the edge
    function of corner i is d . (v_j x v_k); it is affine in the pixel coordinates, so it is
    stored as its value at the bounding box's first pixel plus per-pixel steps. The setup is
    done in float64 (the cross products cancel); the per-pair work is float32.
    """

    face_ids: torch.Tensor    # T: index into the caller's faces
    box_x: torch.Tensor       # T: first pixel column of the bounding box
    box_y: torch.Tensor       # T: first pixel row
    box_width: torch.Tensor   # T
    box_height: torch.Tensor  # T
    edge_origin: torch.Tensor  # T x 3: edge functions at the box's first pixel centre
    edge_step_x: torch.Tensor  # T x 3: change per pixel to the right
    edge_step_y: torch.Tensor  # T x 3: change per pixel down
    triple: torch.Tensor      # T: v0 . (v1 x v2); depth = triple / sum of edge functions
    min_total: torch.Tensor   # T: smaller sums are grazing rays lost in float32 rounding

    @classmethod
    def build(cls, vertices_cam: torch.Tensor, faces: torch.Tensor, camera: Camera,
              near: float) -> "_TriangleSetup":
        corners = vertices_cam.detach().to(torch.float64)[faces]  # F x 3 x 3
        x0, y0, x1, y1 = _visible_pixel_box(corners, camera, near)
        v0, v1, v2 = corners.unbind(1)
        edges = torch.stack([torch.linalg.cross(v1, v2), torch.linalg.cross(v2, v0),
                             torch.linalg.cross(v0, v1)], dim=1)  # F x 3 x 3
        # The sum of edge functions is d . (v1 - v0) x (v2 - v0): zero for degenerate
        # triangles and for rays in the triangle's plane (edge-on). Below this floor its
        # float32 value is rounding noise; those rays graze the triangle, cover a sliver
        # of well under a pixel, and are dropped.
        min_total = GRAZING_TOLERANCE * edges.norm(dim=2).sum(1)
        keep = (x1 >= x0) & (y1 >= y0) & (edges.sum(1).norm(dim=1) > min_total)
        ids = torch.nonzero(keep).squeeze(1)

        edges, x0, y0 = edges[ids], x0[ids], y0[ids]
        ray_x = (x0 + 0.5 - camera.cx) / camera.fx
        ray_y = -(y0 + 0.5 - camera.cy) / camera.fy
        origin = edges[..., 0] * ray_x[:, None] + edges[..., 1] * ray_y[:, None] - edges[..., 2]
        as32 = dict(dtype=torch.float32)
        return cls(face_ids=ids, box_x=x0.long(), box_y=y0.long(),
                   box_width=(x1[ids] - x0 + 1).long(), box_height=(y1[ids] - y0 + 1).long(),
                   edge_origin=origin.to(**as32), edge_step_x=(edges[..., 0] / camera.fx).to(**as32),
                   edge_step_y=(-edges[..., 1] / camera.fy).to(**as32),
                   triple=(v0[ids] * edges[:, 0]).sum(1).to(**as32),
                   min_total=min_total[ids].to(**as32))

    def test(self, local: torch.Tensor, offset: torch.Tensor, near: float) -> "_Hits":
        """Edge and depth tests of candidate pairs (local triangle index, offset in its box)."""
        box_width = self.box_width[local]
        dx, dy = offset % box_width, offset // box_width
        edge = (self.edge_origin[local] + dx.unsqueeze(1) * self.edge_step_x[local]
                + dy.unsqueeze(1) * self.edge_step_y[local])
        total = edge.sum(1)
        # Inside when all three edge functions share the sign of their sum (either winding).
        inside = ((edge * total.sign().unsqueeze(1)) >= 0).all(1)
        inside &= total.abs() > self.min_total[local]
        depth = self.triple[local] / torch.where(inside, total, torch.ones_like(total))
        inside &= depth >= near
        keep = torch.nonzero(inside).squeeze(1)
        pixel_x = self.box_x[local[keep]] + dx[keep]
        pixel_y = self.box_y[local[keep]] + dy[keep]
        return _Hits(local[keep], pixel_x, pixel_y, depth[keep],
                     edge[keep] / total[keep].unsqueeze(1))


@dataclass(frozen=True)
class _Hits:
    triangle: torch.Tensor  # local triangle index, ascending
    pixel_x: torch.Tensor
    pixel_y: torch.Tensor
    depth: torch.Tensor
    barycentrics: torch.Tensor


def _depth_test(hits: _Hits, width: int, depth_buffer: torch.Tensor,
                triangle_buffer: torch.Tensor, bary_buffer: torch.Tensor) -> None:
    """Merge one chunk of hits into the buffers; nearest wins, ties go to the lower id.

    Chunks arrive in ascending triangle order, so on an exact tie with an earlier chunk
    the buffer's entry (lower id) is kept.
    """
    pixel = hits.pixel_y * width + hits.pixel_x
    nearest = depth_buffer.scatter_reduce(0, pixel, hits.depth, reduce="amin")
    closer = (hits.depth == nearest[pixel]) & (hits.depth < depth_buffer[pixel])
    pixel, triangle = pixel[closer], hits.triangle[closer]
    lowest = torch.full_like(triangle_buffer, torch.iinfo(torch.int64).max)
    lowest.scatter_reduce_(0, pixel, triangle, reduce="amin")
    winner = torch.nonzero(triangle == lowest[pixel]).squeeze(1)
    chosen = closer.nonzero().squeeze(1)[winner]
    pixel = pixel[winner]
    depth_buffer[pixel] = hits.depth[chosen]
    triangle_buffer[pixel] = hits.triangle[chosen]
    bary_buffer[pixel] = hits.barycentrics[chosen]


def _visible_pixel_box(corners: torch.Tensor, camera: Camera, near: float):
    """Inclusive pixel box (x0, y0, x1, y1) of each triangle's part in front of the near
    plane: the projection of its corners in front plus its edges' crossings of the plane.
    Empty boxes (x1 < x0 or y1 < y0) mean the triangle covers no pixel centre."""
    depth = -corners[..., 2]  # F x 3
    start, end = corners, corners.roll(-1, dims=1)  # the edges 0-1, 1-2, 2-0
    depth_start, depth_end = depth, depth.roll(-1, dims=1)
    crosses = (depth_start - near) * (depth_end - near) < 0
    t = ((depth_start - near) / torch.where(crosses, depth_start - depth_end, torch.ones_like(depth)))
    crossing = start + t.unsqueeze(-1) * (end - start)  # points on the near plane
    points = torch.cat([corners, crossing], dim=1)  # F x 6 x 3
    valid = torch.cat([depth >= near, crosses], dim=1)
    point_depth = (-points[..., 2]).clamp(min=near)
    u = camera.fx * points[..., 0] / point_depth + camera.cx
    v = -camera.fy * points[..., 1] / point_depth + camera.cy
    inf = torch.tensor(float("inf"), dtype=u.dtype, device=u.device)
    u_min, u_max = torch.where(valid, u, inf).amin(1), torch.where(valid, u, -inf).amax(1)
    v_min, v_max = torch.where(valid, v, inf).amin(1), torch.where(valid, v, -inf).amax(1)
    # Pixel i has its centre at i + 0.5: the covered columns are ceil(u_min - 0.5)..floor(u_max - 0.5).
    x0 = torch.ceil(u_min - 0.5).clamp(0, camera.width)
    x1 = torch.floor(u_max - 0.5).clamp(-1, camera.width - 1)
    y0 = torch.ceil(v_min - 0.5).clamp(0, camera.height)
    y1 = torch.floor(v_max - 0.5).clamp(-1, camera.height - 1)
    return x0, y0, x1, y1

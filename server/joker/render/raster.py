"""A vectorised triangle rasterizer in torch: no OpenGL, same code on CPU and CUDA.

Two functions in the spirit of nvdiffrast: `rasterize` finds, for every pixel, the nearest
triangle and the perspective-correct barycentrics of the point it sees; `interpolate`
turns any per-vertex attribute (normals, UVs, colours) into an image with them.

How, with no Python loop over triangles or pixels:
1. Per triangle: the pixel rows its visible part spans, and three edge functions of the
   *camera ray* through a pixel, e_i = d . (v_j x v_k) (scalar triple products). They are
   affine in the pixel coordinates, give exact perspective-correct barycentrics
   e_i / sum(e), and stay right for triangles that cross the near plane.
2. Per (triangle, row): the column span where all three edge functions can be >= 0,
   widened by a pixel so rounding never loses a pixel (the per-pixel test decides).
3. Per (triangle, pixel) candidate, in chunks of bounded size: the edge and depth tests.
4. Depth test: one `scatter_reduce(amin)` over 64-bit keys (depth bits, then triangle id),
   so the nearest surface wins and exact ties go to the lower triangle id, on any device.
5. The winners' barycentrics, recomputed once per pixel in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from joker_core.cameras import Camera

# Candidate (triangle, pixel) pairs tested at once; bounds peak memory to ~200 MB.
DEFAULT_MAX_PAIRS = 1 << 21
# Relative size (vs. the edge functions' scale) below which a ray grazes a triangle.
GRAZING_TOLERANCE = 1e-5
# Relative tolerance of the per-row column spans: far above float32 rounding.
SPAN_SLACK = 1e-5
_EMPTY_KEY = torch.iinfo(torch.int64).max


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
    faces = faces.to(device=device, dtype=torch.int64)
    triangles = _setup_triangles(vertices_cam, faces, camera, near)
    spans = _row_spans(triangles, camera)
    keys = torch.full((camera.height * camera.width,), _EMPTY_KEY, dtype=torch.int64, device=device)
    for first, last in spans.chunks(max(max_pairs, camera.width)):
        keys.scatter_reduce_(0, *spans.test(first, last, near), reduce="amin")
    return _fragments(keys, triangles, camera)


def interpolate(attributes: torch.Tensor, faces: torch.Tensor, fragments: Fragments) -> torch.Tensor:
    """Per-vertex attributes V x C -> H x W x C image (zero on the background)."""
    faces = faces.to(device=attributes.device, dtype=torch.int64)
    triangle_id = fragments.triangle_id.reshape(-1)
    pixel = torch.nonzero(triangle_id >= 0).squeeze(1)
    corners = _take(faces, _take(triangle_id, pixel)).reshape(-1)
    values = _take(attributes, corners).view(len(pixel), 3, -1)  # P x 3 corners x C
    weights = _take(fragments.barycentrics.reshape(-1, 3), pixel).to(attributes.dtype)
    image = attributes.new_zeros((triangle_id.numel(), attributes.shape[1]))
    image = image.index_copy(0, pixel, (weights.unsqueeze(-1) * values).sum(1))
    return image.view(*fragments.triangle_id.shape, -1)


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values[index] along the first axis; index_select is several times faster than
    advanced indexing on the CPU, and these gathers are the rasterizer's main cost."""
    return values.index_select(0, index)


@dataclass(frozen=True)
class _Triangles:
    """Per-triangle constants (float64) of the triangles that may cover a pixel centre.

    With the camera ray through a pixel d = ((u - cx)/fx, -(v - cy)/fy, -1), edge function
    i is d . c_i with c_i = v_j x v_k, times the triangle's facing sign so that "inside" is
    "all three >= 0" for either winding. The sum of the three is d . (v1 - v0) x (v2 - v0),
    and the hit's depth along -z is |v0 . (v1 x v2)| / sum. A triangle sharing an edge has
    exactly the negated coefficients for it, and every pixel's d is computed once for all
    triangles, so the two float32 tests agree to the bit: no cracks, whatever the rounding.
    """

    face_ids: torch.Tensor   # T, into the caller's faces
    box: torch.Tensor        # T x 4 long: first column, first row, last column, last row
    coeff_x: torch.Tensor    # T x 3 (one column per edge function)
    coeff_y: torch.Tensor    # T x 3
    coeff_z: torch.Tensor    # T x 3
    triple: torch.Tensor     # T, > 0
    min_total: torch.Tensor  # T: smaller sums are grazing rays lost in float32 rounding
    slack: torch.Tensor      # T x 3: SPAN_SLACK * |c_i|, the span tolerance for a unit ray

    def edges(self, local: torch.Tensor, ray_x: torch.Tensor, ray_y: torch.Tensor) -> torch.Tensor:
        """N x 3 edge functions of triangles `local` for rays (ray_x, ray_y, -1), N x 1 each."""
        return _take(self.coeff_x, local) * ray_x + _take(self.coeff_y, local) * ray_y - _take(self.coeff_z, local)


def _setup_triangles(vertices_cam: torch.Tensor, faces: torch.Tensor, camera: Camera, near: float) -> _Triangles:
    corners = _take(vertices_cam.detach().to(torch.float64), faces.reshape(-1)).view(-1, 3, 3)
    corners = torch.where(corners.isfinite().all(2, keepdim=True).all(1, keepdim=True), corners, torch.nan)
    box = _visible_pixel_box(corners, camera, near)
    v0, v1, v2 = corners.unbind(1)
    coeffs = torch.stack([torch.linalg.cross(v1, v2), torch.linalg.cross(v2, v0),
                          torch.linalg.cross(v0, v1)], dim=1)  # F x edge x (x, y, z)
    triple = (v0 * coeffs[:, 0]).sum(1)
    # The edge sum is zero for degenerate triangles and for rays in a triangle's plane
    # (edge-on, triple = 0). Sums below this floor are float32 rounding noise; such rays
    # graze the triangle, on a sliver well under a pixel wide, and are dropped.
    min_total = GRAZING_TOLERANCE * coeffs.norm(dim=2).sum(1)
    keep = (box[:, 2] >= box[:, 0]) & (box[:, 3] >= box[:, 1]) & (triple != 0)
    keep &= coeffs.sum(1).norm(dim=1) > min_total  # also false where a corner is NaN or inf
    ids = torch.nonzero(keep).squeeze(1)
    coeffs = _take(coeffs, ids) * _take(triple, ids).sign()[:, None, None]
    return _Triangles(ids, _take(box, ids).long(), *(c.contiguous() for c in coeffs.unbind(2)),
                      _take(triple, ids).abs(), _take(min_total, ids), SPAN_SLACK * coeffs.norm(dim=2))


@dataclass(frozen=True)
class _Spans:
    """Runs of candidate pixels, one per (triangle, row), in ascending triangle order.

    Along a row, edge function i is row_i + coeff_x_i * ray_x(column), with
    row_i = c_iy * ray_y - c_iz fixed per run: the same float32 expression for every
    triangle, so a shared edge's two tests stay exact negations of each other.
    """

    triangle: torch.Tensor      # S, local triangle id
    row_start: torch.Tensor     # S, flat index (row * width) of the run's row
    column_shift: torch.Tensor  # S, column of candidate p of run s = p + column_shift[s]
    length: torch.Tensor        # S, > 0
    end: torch.Tensor           # S, cumulative sum of length
    table: torch.Tensor         # 8 x S float32: row (3), coeff_x (3), triple, min_total
    ray_x: torch.Tensor         # W float32: the ray x of each pixel column

    def chunks(self, max_pairs: int) -> list[tuple[int, int]]:
        """(first, last) span ranges of at most about `max_pairs` candidates each."""
        total = int(self.end[-1]) if len(self.end) else 0
        limits = torch.arange(max_pairs, max(total, max_pairs), max_pairs, device=self.end.device)
        bounds = [0, *torch.searchsorted(self.end, limits, right=True).tolist(), len(self.end)]
        return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def test(self, first: int, last: int, near: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Edge and depth tests of spans first..last-1: (flat pixel, depth key) of each hit."""
        skipped = int(self.end[first] - self.length[first])  # candidates in earlier chunks
        count = int(self.end[last - 1]) - skipped
        span = torch.repeat_interleave(torch.arange(first, last, device=self.end.device),
                                       self.length[first:last], output_size=count)
        column = torch.arange(skipped, skipped + count, device=span.device) + _take(self.column_shift, span)
        ray_x = _take(self.ray_x, column)
        row0, row1, row2, coeff_x0, coeff_x1, coeff_x2, triple, min_total = self.table.index_select(1, span)
        edge0, edge1, edge2 = row0 + coeff_x0 * ray_x, row1 + coeff_x1 * ray_x, row2 + coeff_x2 * ray_x
        total = edge0 + edge1 + edge2
        inside = (torch.minimum(torch.minimum(edge0, edge1), edge2) >= 0) & (total > min_total)
        inside &= triple >= near * total  # depth = triple / total >= near
        keep = torch.nonzero(inside).squeeze(1)
        depth = _take(triple, keep) / _take(total, keep)
        span = _take(span, keep)
        pixel = _take(self.row_start, span) + _take(column, keep)
        # Positive float32 depths order like their bit patterns: nearest first, then lowest id.
        return pixel, (depth.view(torch.int32).long() << 32) | _take(self.triangle, span)


def _row_spans(triangles: _Triangles, camera: Camera) -> _Spans:
    """Each triangle's rows, and in each the columns where it may cover pixel centres."""
    device = triangles.box.device
    rows = triangles.box[:, 3] - triangles.box[:, 1] + 1
    triangle = torch.repeat_interleave(torch.arange(len(rows), device=device), rows)
    box = _take(triangles.box, triangle)
    y = box[:, 1] + torch.arange(len(triangle), device=device) - _take(torch.cumsum(rows, 0) - rows, triangle)
    ray_y = (-(y + 0.5 - camera.cy) / camera.fy).unsqueeze(1)
    ray_x0 = ((box[:, 0] + 0.5 - camera.cx) / camera.fx).unsqueeze(1)
    coeff_x = _take(triangles.coeff_x, triangle)
    row = triangles.edges(triangle, 0.0, ray_y)  # R x 3: the row's edge functions at ray_x = 0
    edge = row + coeff_x * ray_x0  # at the box's first column
    step = coeff_x / camera.fx  # per column to the right
    # Columns k (from the box's first) with edge + k * step >= -slack for all three edges;
    # the slack (far above float32 rounding) and one more column each side keep every
    # pixel the exact test may accept. Edges parallel to the row leave it unconstrained.
    slack = _take(triangles.slack, triangle) * torch.sqrt(ray_x0 ** 2 + ray_y ** 2 + 1.0)
    bound = (-slack - edge) / torch.where(step == 0, torch.ones_like(step), step)
    inf = torch.full_like(bound, float("inf"))
    start = (torch.where(step > 0, bound, -inf).amax(1).ceil() - 1).clamp(min=0)
    stop = torch.where(step < 0, bound, inf).amin(1).floor() + 1
    stop = torch.minimum(stop, (box[:, 2] - box[:, 0]).double())
    length = (stop - start + 1).clamp(min=0).long()

    runs = torch.nonzero(length).squeeze(1)
    length = _take(length, runs)
    end = torch.cumsum(length, 0)
    first_column = _take(box[:, 0], runs) + _take(start, runs).long()
    triangle = _take(triangle, runs)
    table = torch.cat([_take(row, runs).T, _take(coeff_x, runs).T, _take(triangles.triple, triangle)[None],
                       _take(triangles.min_total, triangle)[None]]).float().contiguous()
    ray_x = (torch.arange(camera.width, device=device, dtype=torch.float64) + 0.5 - camera.cx) / camera.fx
    return _Spans(triangle, _take(y, runs) * camera.width, first_column - (end - length), length, end,
                  table, ray_x.float())


def _fragments(keys: torch.Tensor, triangles: _Triangles, camera: Camera) -> Fragments:
    """Decode the depth-test keys; the winners' barycentrics, recomputed in float64."""
    pixel = torch.nonzero(keys != _EMPTY_KEY).squeeze(1)
    key = _take(keys, pixel)
    local = key & 0xFFFFFFFF
    ray_x = (((pixel % camera.width) + 0.5 - camera.cx) / camera.fx).unsqueeze(1)
    ray_y = (-((pixel // camera.width) + 0.5 - camera.cy) / camera.fy).unsqueeze(1)
    edge = triangles.edges(local, ray_x, ray_y)
    size, device = camera.height * camera.width, keys.device
    triangle_id = torch.full((size,), -1, dtype=torch.int64, device=device)
    barycentrics = torch.zeros((size, 3), device=device)
    depth = torch.zeros(size, device=device)
    triangle_id.index_copy_(0, pixel, _take(triangles.face_ids, local))
    barycentrics.index_copy_(0, pixel, (edge / edge.sum(1, keepdim=True)).float())
    depth.index_copy_(0, pixel, (key >> 32).to(torch.int32).view(torch.float32))
    shape = (camera.height, camera.width)
    return Fragments(triangle_id.view(shape), barycentrics.view(*shape, 3), depth.view(shape))


def _visible_pixel_box(corners: torch.Tensor, camera: Camera, near: float) -> torch.Tensor:
    """F x 4 inclusive pixel box (first column, first row, last column, last row) of each
    triangle's part in front of the near plane: its corners in front plus its edges'
    crossings of the plane. An empty box (last < first) covers no pixel centre."""
    depth = -corners[..., 2]  # F x 3
    start, end = corners, corners.roll(-1, dims=1)  # the edges 0-1, 1-2, 2-0
    depth_end = depth.roll(-1, dims=1)
    crosses = (depth - near) * (depth_end - near) < 0
    t = (depth - near) / torch.where(crosses, depth - depth_end, torch.ones_like(depth))
    crossing = start + t.unsqueeze(-1) * (end - start)  # points on the near plane
    points = torch.cat([corners, crossing], dim=1)  # F x 6 x 3
    valid = torch.cat([depth >= near, crosses], dim=1)
    point_depth = (-points[..., 2]).clamp(min=near)
    u = camera.fx * points[..., 0] / point_depth + camera.cx
    v = -camera.fy * points[..., 1] / point_depth + camera.cy
    inf = torch.full_like(u, float("inf"))
    # Pixel i has its centre at i + 0.5: columns ceil(u_min - 0.5) .. floor(u_max - 0.5).
    return torch.stack([
        (torch.where(valid, u, inf).amin(1) - 0.5).ceil().clamp(0, camera.width),
        (torch.where(valid, v, inf).amin(1) - 0.5).ceil().clamp(0, camera.height),
        (torch.where(valid, u, -inf).amax(1) - 0.5).floor().clamp(-1, camera.width - 1),
        (torch.where(valid, v, -inf).amax(1) - 0.5).floor().clamp(-1, camera.height - 1),
    ], dim=1)

"""The rasterizer against analytic answers: sphere silhouettes and ray intersections,
planes seen at an angle, and the awkward cases (near plane, degenerate, empty, ties)."""

import numpy as np
import pytest
import torch
import trimesh

from joker_core.cameras import Camera, look_at
from joker.render.raster import interpolate, rasterize, world_to_camera


def _front_camera(size=64, fov=40.0, distance=3.0):
    return Camera.from_fov(look_at((0, 0, distance), (0, 0, 0)), fov, size, size)


def _pixel_rays(camera):
    """Unit-depth camera-space rays through the pixel centres, H x W x 3 (z = -1)."""
    u = np.arange(camera.width) + 0.5
    v = np.arange(camera.height) + 0.5
    uu, vv = np.meshgrid(u, v)
    return np.stack([(uu - camera.cx) / camera.fx, -(vv - camera.cy) / camera.fy,
                     -np.ones_like(uu)], axis=-1)


def _sphere(subdivisions=4, radius=1.0):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    return torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces)


def _rasterize_world(vertices, faces, camera, **kwargs):
    return rasterize(world_to_camera(vertices, camera), faces, camera, **kwargs)


def test_sphere_silhouette_and_hits_agree_with_the_analytic_sphere():
    camera = _front_camera(size=96)
    vertices, faces = _sphere(subdivisions=5)
    fragments = _rasterize_world(vertices, faces, camera)

    rays = _pixel_rays(camera)
    centre = np.array([0.0, 0.0, -3.0])  # sphere centre in camera space
    # |t d - c|^2 = 1 -> a t^2 - 2 b t + (|c|^2 - 1) = 0 has a real root
    a = (rays ** 2).sum(-1)
    b = rays @ centre
    disc = b ** 2 - a * (centre @ centre - 1.0)
    analytic_mask = disc > 0

    mask = fragments.mask.numpy()
    # The icosphere is inscribed in the sphere: it may only lose a rim of silhouette pixels.
    assert not (mask & ~analytic_mask).any()
    rim = analytic_mask & ~mask
    assert rim.sum() < 0.01 * analytic_mask.sum()
    depth = fragments.depth.numpy()
    # Every hit lies on a facet: between the facets' inner radius and the sphere.
    hits = rays[mask] * depth[mask][:, None] - centre
    corners = vertices.double().numpy()[faces.numpy()]
    facet_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    facet_normals /= np.linalg.norm(facet_normals, axis=1, keepdims=True)
    inner_radius = np.abs((facet_normals * corners[:, 0]).sum(1)).min()
    radius = np.linalg.norm(hits, axis=1)
    assert radius.min() > inner_radius - 1e-5 and radius.max() < 1.0 + 1e-5
    assert ((hits * rays[mask]).sum(1) < 0).all()  # the near side, never the far one
    assert (depth[~mask] == 0).all() and (fragments.triangle_id.numpy()[~mask] == -1).all()


def test_barycentrics_are_perspective_correct_on_a_slanted_triangle():
    camera = _front_camera(size=48, fov=60.0)
    # A triangle receding steeply from the camera: screen-space interpolation would be far off.
    vertices_cam = torch.tensor([[-2.0, -1.5, -1.5], [2.0, -1.5, -1.5], [0.0, 2.0, -12.0]])
    faces = torch.tensor([[0, 1, 2]])
    fragments = rasterize(vertices_cam, faces, camera)
    mask = fragments.mask
    assert mask.sum() > 200

    bary = fragments.barycentrics[mask]
    assert torch.allclose(bary.sum(1), torch.ones(len(bary)), atol=1e-5)
    assert (bary >= -1e-6).all()
    points = interpolate(vertices_cam, faces, fragments)[mask].double().numpy()
    # The interpolated 3D point must lie on the pixel's ray at the reported depth.
    rays = _pixel_rays(camera)[mask.numpy()]
    depth = fragments.depth[mask].double().numpy()
    assert np.allclose(points, rays * depth[:, None], atol=1e-4)


def test_pixel_centre_convention_and_top_left_origin():
    camera = Camera(np.eye(4), fx=10.0, fy=10.0, cx=5.0, cy=5.0, width=10, height=10)
    # A square at depth 1 covering u in [2.2, 5.2], v in [1.2, 3.2] (image rows grow downward).
    u0, u1, v0, v1 = 2.2, 5.2, 1.2, 3.2
    x = lambda u: (u - camera.cx) / camera.fx
    y = lambda v: -(v - camera.cy) / camera.fy
    vertices = torch.tensor([[x(u0), y(v0), -1.0], [x(u1), y(v0), -1.0],
                             [x(u1), y(v1), -1.0], [x(u0), y(v1), -1.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    mask = rasterize(vertices, faces, camera).mask.numpy()
    expected = np.zeros((10, 10), dtype=bool)
    expected[1:3, 2:5] = True  # centres 2.5, 3.5, 4.5 (columns) and 1.5, 2.5 (rows)
    assert (mask == expected).all()


def test_a_finely_split_wavy_plane_has_no_cracks():
    camera = _front_camera(size=64, fov=30.0, distance=2.0)
    n = 40
    xs = np.linspace(-2, 2, n + 1)
    xx, yy = np.meshgrid(xs, xs)
    # A wavy height field: many tiny triangles of all orientations sharing edges.
    zz = 0.05 * np.sin(3 * xx) * np.cos(2 * yy)
    vertices = torch.tensor(np.stack([xx, yy, zz], -1).reshape(-1, 3), dtype=torch.float32)
    idx = np.arange((n + 1) ** 2).reshape(n + 1, n + 1)
    quads = np.stack([idx[:-1, :-1], idx[:-1, 1:], idx[1:, 1:], idx[1:, :-1]], -1).reshape(-1, 4)
    faces = torch.tensor(np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]))
    fragments = _rasterize_world(vertices, faces, camera)
    assert fragments.mask.all()  # the plane fills the view: every pixel centre is covered
    assert torch.allclose(fragments.barycentrics.sum(-1), torch.ones(64, 64), atol=1e-5)


def test_nearest_surface_wins_whatever_the_order_and_ties_go_to_the_lower_id():
    camera = _front_camera(size=32)
    quad = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=np.float32)

    def plane(z):
        return np.concatenate([quad, np.full((4, 1), z, np.float32)], 1)

    vertices = torch.tensor(np.concatenate([plane(-2.0), plane(0.5), plane(0.5)]))
    base = np.array([[0, 1, 2], [0, 2, 3]])
    far, near, near_twin = base, base + 4, base + 8
    for order in ([far, near, near_twin], [near_twin, near, far]):
        faces = torch.tensor(np.concatenate(order))
        fragments = _rasterize_world(vertices, faces, camera)
        seen = faces[fragments.triangle_id[fragments.mask]]
        # Every hit is on the near plane (vertices 4..11), never on the far one ...
        assert (seen >= 4).all()
        # ... and of the two coincident near planes, the one listed first wins every tie.
        first_near = 0 if order[0] is not far else 2
        ids = fragments.triangle_id[fragments.mask]
        assert ((ids == first_near) | (ids == first_near + 1)).all()
        assert torch.allclose(fragments.depth[fragments.mask], torch.tensor(2.5))


def test_chunked_rasterization_equals_one_pass():
    camera = _front_camera(size=48)
    vertices, faces = _sphere(subdivisions=3)
    whole = _rasterize_world(vertices, faces, camera)
    chunked = _rasterize_world(vertices, faces, camera, max_pairs=997)
    assert torch.equal(whole.triangle_id, chunked.triangle_id)
    assert torch.equal(whole.depth, chunked.depth)
    assert torch.equal(whole.barycentrics, chunked.barycentrics)


def test_a_floor_crossing_the_near_plane_is_clipped_not_wrapped():
    camera = Camera(np.eye(4), fx=20.0, fy=20.0, cx=16.0, cy=16.0, width=32, height=32)
    # A floor at y = -1 from behind the camera (z = +5) to far ahead (z = -50).
    vertices = torch.tensor([[-30.0, -1.0, 5.0], [30.0, -1.0, 5.0], [30.0, -1.0, -50.0],
                             [-30.0, -1.0, -50.0]])
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]])
    fragments = rasterize(vertices, faces, camera, near=0.1)
    rays = _pixel_rays(camera)
    expected_depth = -1.0 / rays[..., 1]  # t with t * ray_y = -1
    sees_floor = (rays[..., 1] < 0) & (expected_depth <= 50.0) & (np.abs(rays[..., 0] * expected_depth) <= 30)
    mask = fragments.mask.numpy()
    assert (mask == sees_floor).all()
    assert np.allclose(fragments.depth.numpy()[mask], expected_depth[mask], rtol=1e-4)
    assert not mask[: camera.height // 2].any()  # nothing above the horizon


def test_geometry_behind_the_camera_or_degenerate_or_edge_on_draws_nothing():
    camera = _front_camera(size=32)
    vertices_cam = torch.tensor([
        [-1.0, -1.0, 2.0], [1.0, -1.0, 2.0], [0.0, 1.0, 2.0],     # behind the camera
        [-1.0, -1.0, -3.0], [1.0, 1.0, -3.0], [0.0, 0.0, -3.0],   # collinear
        [0.0, -1.0, -2.0], [0.0, 1.0, -2.0], [0.0, 0.0, -5.0],    # edge-on (plane x = 0)
        [0.5, 0.5, -3.0],                                         # repeated corner below
    ])
    faces = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 9, 3]])
    assert not rasterize(vertices_cam, faces, camera).mask.any()


def test_triangles_with_a_non_finite_corner_are_skipped_and_the_rest_drawn():
    camera = _front_camera(size=32)
    vertices, faces = _sphere(subdivisions=2)
    broken = vertices.clone()
    broken[int(torch.argmax(vertices[:, 2]))] = float("nan")  # the vertex facing the camera
    whole = _rasterize_world(vertices, faces, camera)
    holed = _rasterize_world(broken, faces, camera)
    uses_nan = torch.isnan(broken[faces]).any(2).any(1)
    assert not uses_nan[holed.triangle_id[holed.mask]].any()
    # Through the hole the inside of the sphere's back shows, farther away; the rest is unchanged.
    changed = holed.triangle_id != whole.triangle_id
    assert changed.any() and (holed.depth[changed] > whole.depth[changed] + 1.0).all()
    assert torch.equal(holed.depth[~changed], whole.depth[~changed])
    assert torch.isfinite(holed.depth).all() and torch.isfinite(holed.barycentrics).all()


def test_empty_mesh_gives_an_empty_image():
    camera = _front_camera(size=8)
    fragments = rasterize(torch.zeros((0, 3)), torch.zeros((0, 3), dtype=torch.int64), camera)
    assert fragments.triangle_id.shape == (8, 8) and (fragments.triangle_id == -1).all()
    assert fragments.barycentrics.shape == (8, 8, 3) and not fragments.depth.any()


def test_interpolate_is_differentiable_in_the_attributes():
    camera = _front_camera(size=16)
    vertices, faces = _sphere(subdivisions=1)
    fragments = _rasterize_world(vertices, faces, camera)
    colours = torch.rand(len(vertices), 3, requires_grad=True)
    interpolate(colours, faces, fragments).sum().backward()
    assert colours.grad is not None and colours.grad.abs().sum() > 0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    camera = _front_camera(size=64)
    vertices, faces = _sphere(subdivisions=4)
    cpu = _rasterize_world(vertices, faces, camera)
    gpu = _rasterize_world(vertices.cuda(), faces.cuda(), camera)
    agree = (gpu.triangle_id.cpu() == cpu.triangle_id).float().mean()
    assert agree > 0.999  # float rounding may flip a pixel on a shared edge
    both = cpu.mask & (gpu.triangle_id.cpu() == cpu.triangle_id)
    assert torch.allclose(gpu.depth.cpu()[both], cpu.depth[both], atol=1e-5)

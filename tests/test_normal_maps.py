"""Normal maps against analytic geometry, and the encodings the prior and the add-on share."""

import numpy as np
import torch
import trimesh

from joker_core.cameras import Camera, look_at
from joker_core.conventions import decode_normals, encode_normals
from joker.render.normal_maps import render_normal_map, vertex_normals


def _sphere(subdivisions=4):
    mesh = trimesh.creation.icosphere(subdivisions=subdivisions)
    return torch.tensor(mesh.vertices, dtype=torch.float32), torch.tensor(mesh.faces)


def _camera_at(eye, size=65, fov=40.0):
    return Camera.from_fov(look_at(eye, (0, 0, 0)), fov, size, size)


def test_sphere_normals_equal_the_analytic_normals_in_camera_axes():
    vertices, faces = _sphere()
    camera = _camera_at((1.5, 1.0, 2.5))  # an oblique view: camera axes differ from world axes
    normal_map = render_normal_map(vertices, faces, camera)
    mask = normal_map.mask.numpy()

    # Analytic: the hit point's world normal is the point itself (unit sphere at the origin);
    # recover the point from the pixel ray and the rendered depth, then rotate the normal.
    u, v = np.meshgrid(np.arange(65) + 0.5, np.arange(65) + 0.5)
    rays = np.stack([(u - camera.cx) / camera.fx, -(v - camera.cy) / camera.fy, -np.ones_like(u)], -1)
    hits_cam = rays * normal_map.depth.numpy()[..., None]
    w2c = camera.w2c
    centre_cam = w2c[:3, 3]  # the sphere centre (world origin) in camera space
    expected = hits_cam - centre_cam
    expected /= np.linalg.norm(expected, axis=-1, keepdims=True)
    rendered = normal_map.normals.numpy()
    assert np.allclose(np.linalg.norm(rendered[mask], axis=1), 1.0, atol=1e-5)
    angle = np.degrees(np.arccos(np.clip((rendered[mask] * expected[mask]).sum(1), -1, 1)))
    assert angle.max() < 1.0  # smooth normals of a 2,562-vertex icosphere
    assert (rendered[~mask] == 0).all()


def test_centre_of_a_sphere_in_front_of_the_camera_encodes_as_128_128_255():
    vertices, faces = _sphere()
    normal_map = render_normal_map(vertices, faces, _camera_at((0, 0, 3)))
    rgb = normal_map.encoded()
    assert tuple(rgb[32, 32]) == (128, 128, 255)  # pixel 32's centre is the optical axis
    assert tuple(rgb[0, 0]) == (0, 0, 0)
    # Right of the centre the normal leans to +x (more red), above it to +y (more green).
    assert rgb[32, 50, 0] > 160 > 96 > rgb[32, 14, 0]
    assert rgb[14, 32, 1] > 160 > 96 > rgb[50, 32, 1]


def test_the_prior_image_is_exactly_the_png_encoding_over_255():
    vertices, faces = _sphere(subdivisions=3)
    normal_map = render_normal_map(vertices, faces, _camera_at((0.3, -0.4, 2.8), size=48))
    rgb = normal_map.encoded()
    assert np.array_equal(rgb, encode_normals(normal_map.normals.numpy(), normal_map.mask.numpy()))
    image = normal_map.as_image()
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert torch.equal(image, torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0)
    decoded, decoded_mask = decode_normals(rgb)
    assert np.array_equal(decoded_mask, normal_map.mask.numpy())


def test_vertex_normals_are_angle_weighted_so_triangulation_does_not_bias_them():
    cube = trimesh.creation.box(extents=(2, 2, 2))  # each square face split into two triangles
    vertices = torch.tensor(cube.vertices, dtype=torch.float64)
    normals = vertex_normals(vertices, torch.tensor(cube.faces))
    # At every corner three faces meet at right angles: the normal is the corner direction,
    # however the squares were split (area weights would tilt it toward the split corners).
    expected = vertices / vertices.norm(dim=1, keepdim=True)
    assert torch.allclose(normals, expected, atol=1e-12)


def test_undrawn_triangles_still_occlude_the_drawn_ones():
    vertices, faces = _sphere(subdivisions=3)
    # A small card between the camera and the sphere, not drawn (like the scalp in face mode).
    card = torch.tensor([[-0.3, -0.3, 1.5], [0.3, -0.3, 1.5], [0.3, 0.3, 1.5], [-0.3, 0.3, 1.5]])
    all_vertices = torch.cat([vertices, card])
    n = len(vertices)
    all_faces = torch.cat([faces, torch.tensor([[n, n + 1, n + 2], [n, n + 2, n + 3]])])
    drawn = torch.ones(len(all_faces), dtype=torch.bool)
    drawn[-2:] = False
    camera = _camera_at((0, 0, 3))

    full = render_normal_map(all_vertices, all_faces, camera)
    face_only = render_normal_map(all_vertices, all_faces, camera, drawn_faces=drawn)
    sphere_alone = render_normal_map(vertices, faces, camera)
    assert full.mask[32, 32] and not face_only.mask[32, 32]  # the card hides the centre
    # Exactly the pixels whose rays hit the card (|x|, |y| <= 0.3 at depth 1.5) are missing.
    centres = torch.arange(65) + 0.5 - camera.cx
    inside = centres.abs() <= 0.3 / 1.5 * camera.fx
    card_shadow = inside[:, None] & inside[None, :]
    assert torch.equal(sphere_alone.mask & ~face_only.mask, card_shadow)
    same = face_only.mask
    assert torch.equal(face_only.normals[same], sphere_alone.normals[same])
    assert (face_only.depth[~same] == 0).all()

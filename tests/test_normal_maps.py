"""Normal maps against analytic geometry, the encodings the prior and the add-on share, and
the demo head seen from the view rig (nose toward the camera, face mode, centring)."""

from dataclasses import replace

import numpy as np
import pytest
import torch
import trimesh

from flame_fixtures import make_small_head_model
from joker_core.cameras import Camera, look_at
from joker_core.conventions import decode_normals, encode_normals
from joker_core.demo_head import load_demo_head
from joker_core.errors import JokerError
from joker_core.framing import head_view_rig
from joker_core.face_region import drawn_faces, face_region, heuristic_face_region
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


# --- The demo head, posed by the rig, seen from the view rig ---------------------------

@pytest.fixture(scope="module")
def demo_head():
    return load_demo_head()


def _template_map(model, camera, mode="full"):
    drawn = drawn_faces(model, mode)
    return render_normal_map(torch.tensor(model.v_template, dtype=torch.float32), torch.tensor(model.faces),
                             camera, drawn_faces=None if drawn is None else torch.tensor(drawn))


def _pixel(camera, point):
    pixels, _ = camera.project(np.asarray(point, dtype=float)[None])
    u, v = pixels[0]
    return int(v), int(u)  # row, column


def test_nose_tip_normal_points_at_the_front_camera(demo_head):
    camera = head_view_rig(demo_head, size=256).camera(0, 0)
    normal_map = _template_map(demo_head, camera)
    row, column = _pixel(camera, demo_head.v_template[demo_head.landmarks["nose_tip"]])
    normal = normal_map.normals[row, column].numpy()
    assert np.degrees(np.arccos(normal[2])) < 8.0
    assert np.abs(normal_map.encoded()[row, column].astype(int) - (128, 128, 255)).max() <= 12


def test_face_mode_keeps_the_face_and_drops_scalp_ears_and_neck(demo_head):
    rig = head_view_rig(demo_head, size=128)
    template, landmarks = demo_head.v_template, demo_head.landmarks
    below_chin = template[:, 1] < template[landmarks["chin"], 1] - 0.03
    neck_front = np.flatnonzero(below_chin)[np.argmax(template[below_chin, 2])]
    scalp_top = np.argmax(template[:, 1])
    face_points = ["nose_tip", "lower_lip", "brow_left", "brow_right", "mouth_left", "mouth_right"]
    for camera, inside, outside in (
        (rig.camera(0, 0), face_points, [neck_front]),
        (rig.camera(0, 60), ["nose_tip"], [scalp_top]),          # from above
        (rig.camera(90, 0), ["nose_tip"], [landmarks["ear_left"]]),  # the left side
    ):
        full, face = _template_map(demo_head, camera), _template_map(demo_head, camera, "face")
        assert not (face.mask & ~full.mask).any()
        for point in inside:
            assert face.mask[_pixel(camera, template[landmarks[point]])], point
        for vertex in outside:
            pixel = _pixel(camera, template[vertex])
            assert full.mask[pixel] and not face.mask[pixel], vertex


def test_every_rig_view_sees_the_whole_head_centred(demo_head):
    rig = head_view_rig(demo_head, size=96)
    for camera in rig.grid(3, 3) + rig.orbit(4):
        mask = _template_map(demo_head, camera).mask.numpy()
        border = np.concatenate([mask[0], mask[-1], mask[:, 0], mask[:, -1]])
        assert not border.any()  # nothing cut off
        rows, columns = np.nonzero(mask)
        centre = np.array([rows.min() + rows.max(), columns.min() + columns.max()]) / 2 + 0.5
        assert np.abs(centre - 48).max() < 0.1 * 96, centre
        assert mask.mean() > 0.15  # and not lost in the distance


def test_heuristic_face_region_agrees_with_the_demo_heads_own(demo_head):
    own, guessed = demo_head.face_region, heuristic_face_region(demo_head)
    assert (own & guessed).sum() / (own | guessed).sum() > 0.8
    landmarks = demo_head.landmarks
    for name in ("nose_tip", "chin", "brow_left", "mouth_right", "upper_lip", "lower_lip"):
        assert guessed[landmarks[name]], name
    template = demo_head.v_template
    for name, vertex in (("ear_left", landmarks["ear_left"]), ("ear_right", landmarks["ear_right"]),
                         ("scalp top", np.argmax(template[:, 1])), ("neck bottom", np.argmin(template[:, 1])),
                         ("back of the head", np.argmin(template[:, 2]))):
        assert not guessed[vertex], name


def test_face_mode_of_a_file_without_a_region_uses_the_heuristic():
    model = replace(make_small_head_model(n_shape=4, n_expr=2), face_region=None)
    region = heuristic_face_region(model)
    assert 0 < region.sum() < len(region)
    assert np.array_equal(face_region(model), region)
    drawn = drawn_faces(model, "face")
    assert np.array_equal(drawn, region[model.faces].all(1))
    assert drawn_faces(model, "full") is None
    with pytest.raises(JokerError, match="Fix:"):
        drawn_faces(model, "scalp")

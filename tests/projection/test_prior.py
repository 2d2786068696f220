import logging
from dataclasses import replace

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from joker.prior.base import Condition, Views
from joker.prior.projection.prior import ProjectionPrior
from joker.prior.projection.texture import MOUTH_INTERIOR_COLOR, bake_texture, resized_camera
from joker.render.raster import interpolate, rasterize, world_to_camera
from joker_core.cameras import Camera, ViewRig
from joker_core.demo_head import load_demo_head
from joker_core.errors import JokerError
from joker_core.lbs import numpy_rig, pose
from joker_core.presets import get_preset

FRONT = ViewRig(distance=0.7, fov_deg=30, size=64)


@pytest.fixture(scope="module")
def head():
    return load_demo_head()


@pytest.fixture(scope="module")
def photo():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def prior(head, photo):
    return ProjectionPrior.from_photo(photo, head, texture_size=256)


@pytest.fixture(scope="module")
def scream(head):
    return pose(numpy_rig(head), get_preset("scream").params_for(head)).vertices


def views_for(cameras: list[Camera]) -> Views:
    return Views(cameras, torch.zeros(len(cameras), 3, cameras[0].height, cameras[0].width))


def condition(vertices) -> Condition:
    return Condition(torch.zeros(1, 3, 64, 64), rig_vertices=torch.as_tensor(vertices, dtype=torch.float32))


def fragments_of(vertices, faces, camera: Camera):
    return rasterize(world_to_camera(torch.as_tensor(vertices, dtype=torch.float32), camera),
                     torch.as_tensor(faces), camera)


def vertex_mask(vertices, faces, camera: Camera, per_vertex: np.ndarray) -> np.ndarray:
    """Pixels where a per-vertex label, interpolated, exceeds one half."""
    fragments = fragments_of(vertices, faces, camera)
    label = interpolate(torch.as_tensor(per_vertex, dtype=torch.float32)[:, None],
                        torch.as_tensor(faces), fragments)[..., 0]
    return (label > 0.5).numpy() & fragments.mask.numpy()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a - b) ** 2)))


def test_neutral_render_from_the_photo_camera_reproduces_the_photo_in_the_face(prior, photo):
    camera = prior.alignment.camera
    render = prior.render(prior.surface.vertices, [camera])[0].permute(1, 2, 0).numpy()
    face = vertex_mask(prior.surface.vertices, prior.surface.faces, camera,
                       prior.surface.trusted_vertices.astype(float))
    rows, cols = np.mgrid[0:camera.height, 0:camera.width] + 0.5
    face &= prior.alignment.face.contains(np.stack([cols.ravel(), rows.ravel()], 1)).reshape(face.shape)
    assert face.sum() > 3000  # the face covers ~80 x 90 px of the 512 px photo
    aligned = psnr(render[face], photo[face] / 255.0)
    assert aligned > 23.0  # measured 24.4 dB: the demo head's lids and lips differ from hers
    # The figure measures alignment: the same render shifted by 4 px loses most of it.
    shifted = replace(camera, cx=camera.cx + 4)
    render = prior.render(prior.surface.vertices, [shifted])[0].permute(1, 2, 0).numpy()
    assert psnr(render[face], photo[face] / 255.0) < aligned - 5.0
    # The photo is not simply everywhere: the background stays the prior's own.
    assert np.allclose(render[0, 0], prior.background)


def test_an_expression_moves_the_mouth_and_shows_a_dark_interior(prior, head, scream):
    camera = FRONT.camera(0.0, 0.0)
    neutral = prior.render(head.v_template, [camera])
    screaming = prior.render(scream, [camera])
    fragments = fragments_of(scream, head.faces, camera)
    interior = fragments.mask.numpy() & prior.surface.dark_faces[fragments.triangle_id.clamp(min=0).numpy()]
    assert interior.sum() > 20
    dark = screaming[0].permute(1, 2, 0).numpy()[interior]
    assert np.abs(dark - MOUTH_INTERIOR_COLOR).max(1).mean() < 0.05
    changed = (neutral - screaming).abs().amax(1)[0].numpy() > 0.1
    assert changed[interior].mean() > 0.9  # where the mouth opened, the image changed
    closed = fragments_of(head.v_template, head.faces, camera)
    assert not prior.surface.dark_faces[closed.triangle_id[closed.mask].numpy()].any()


def test_renders_are_deterministic_and_so_is_the_texture(prior, head, photo, scream):
    cameras = FRONT.grid(2, 1)
    first = prior.render(scream, cameras)
    assert torch.equal(first, prior.render(scream, cameras))
    again = bake_texture(prior.surface, photo, prior.alignment.camera, prior.texture.image.shape[0],
                         prior.alignment.face.contains)
    assert np.array_equal(again.image, prior.texture.image)


def test_noise_follows_the_generator_and_the_schedule(prior):
    images = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a = prior.noise(images, 10, torch.Generator().manual_seed(1)).sample
    b = prior.noise(images, 10, torch.Generator().manual_seed(1)).sample
    c = prior.noise(images, 10, torch.Generator().manual_seed(2)).sample
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Less noise at later levels: the clean signal's share grows.
    early = prior.noise(images, 0, torch.Generator().manual_seed(1)).sample
    late = prior.noise(images, 99, torch.Generator().manual_seed(1)).sample
    clean = images * 2 - 1
    assert (late - clean).abs().mean() < 0.1 < (early - clean).abs().mean()


def test_predictions_are_the_render_and_every_evaluation_is_counted(prior, scream):
    cameras = FRONT.grid(3, 1)
    views, cond = views_for(cameras), condition(scream)
    before = prior.evaluations.total
    noisy = prior.noise(torch.rand(3, 3, 64, 64), 60, torch.Generator().manual_seed(0))
    other = prior.noise(torch.rand(3, 3, 64, 64), 60, torch.Generator().manual_seed(9))
    clean = prior.predict_clean(noisy, views, cond)
    assert torch.equal(clean, prior.predict_clean(other, views, cond))
    assert torch.equal(clean, prior.render(scream, cameras))
    assert prior.evaluations.total - before == 6
    assert torch.equal(prior.denoise(noisy, views, cond, steps=40), clean)
    assert prior.evaluations.total - before == 6 + 3 * 40
    assert torch.equal(prior.sample(views, cond, steps=5), clean)
    assert prior.evaluations.total - before == 6 + 3 * 40 + 3 * 5
    assert prior.evaluations.by_kind["denoise"] >= 120


def test_renders_follow_the_views_resolution(prior, scream):
    camera = FRONT.camera(20.0, 5.0)  # 64 px
    views = Views([camera], torch.zeros(1, 3, 48, 64))
    image = prior.predict_clean(prior.noise(torch.zeros(1, 3, 48, 64), 50), views, condition(scream))
    assert image.shape == (1, 3, 48, 64)


def test_missing_or_mismatched_rig_vertices_are_clear_errors(prior):
    views = views_for([FRONT.camera(0.0, 0.0)])
    noisy = prior.noise(torch.zeros(1, 3, 64, 64), 50)
    with pytest.raises(JokerError, match="rig vertices"):
        prior.predict_clean(noisy, views, Condition(torch.zeros(1, 3, 8, 8)))
    with pytest.raises(JokerError, match="same head model"):
        prior.predict_clean(noisy, views, condition(np.zeros((100, 3))))


def test_a_head_without_uvs_falls_back_to_vertex_colours_and_says_so(head, photo, caplog):
    bare = replace(head, uv_coords=None, uv_faces=None)
    with caplog.at_level(logging.WARNING):
        prior = ProjectionPrior.from_photo(photo, bare)
    assert "no UV layout" in caplog.text
    assert prior.texture.image is None
    image = prior.render(bare.v_template, [resized_camera(prior.alignment.camera, 128, 128)])[0]
    x, y, w, h = (prior.alignment.detection.box / 4).round().astype(int)  # 512 -> 128 px
    inner = (slice(y + h // 4, y + 3 * h // 4), slice(x + w // 4, x + 3 * w // 4))
    small_photo = cv2.resize(photo, (128, 128), interpolation=cv2.INTER_AREA) / 255.0
    assert np.abs(image.permute(1, 2, 0).numpy()[inner] - small_photo[inner]).mean() < 0.08

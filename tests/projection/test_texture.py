from dataclasses import replace

import numpy as np
import pytest

from joker.prior.projection.texture import (MOUTH_INTERIOR_COLOR, Origin, Surface, bake_texture,
                                            harmonic_fill, vertex_samples)
from joker_core.cameras import ViewRig
from joker_core.errors import JokerError

from .synthetic import ellipsoid_surface

SIZE = 128


def gradient_photo(size: int = 256) -> np.ndarray:
    """A smooth, everywhere-different pattern: red grows to the right, green downwards."""
    ramp = np.linspace(0, 255, size)
    red, green = np.meshgrid(ramp, ramp)
    return np.stack([red, green, np.full_like(red, 90.0)], -1).astype(np.uint8)


@pytest.fixture(scope="module")
def surface():
    return ellipsoid_surface()


@pytest.fixture(scope="module")
def side_camera():
    """Sees the head's +x side only."""
    return ViewRig(distance=0.6, fov_deg=30, size=256).camera(60.0, 0.0)


@pytest.fixture(scope="module")
def side_texture(surface, side_camera):
    return bake_texture(surface, gradient_photo(), side_camera, SIZE)


def test_every_texel_is_filled_within_the_range_of_what_was_seen(side_texture):
    image, origin = side_texture.image, side_texture.origin
    assert image.shape == (SIZE, SIZE, 3) and np.isfinite(image).all()
    assert {Origin.PHOTO, Origin.MIRROR, Origin.FILL} <= set(np.unique(origin))
    seen = np.isin(origin, (Origin.PHOTO, Origin.MIRROR))
    filled = origin == Origin.FILL
    # A membrane fill never invents colours outside those it interpolates (maximum principle;
    # the tolerance covers grazing texels, whose stored colour is already partly the fill).
    low, high = image[seen].min(0), image[seen].max(0)
    assert (image[filled] >= low - 0.01).all() and (image[filled] <= high + 0.01).all()


def test_unseen_side_is_the_mirror_image_of_the_seen_side(side_texture):
    # On the ellipsoid, x -> -x maps texel column c to SIZE - 1 - c (u -> 1 - u).
    image, origin = side_texture.image, side_texture.origin
    rows, cols = np.nonzero(origin == Origin.MIRROR)
    partner = SIZE - 1 - cols
    paired = origin[rows, partner] == Origin.PHOTO
    assert paired.mean() > 0.9
    rows, cols, partner = rows[paired], cols[paired], partner[paired]
    difference = np.abs(image[rows, cols] - image[rows, partner]).max(1)
    assert np.median(difference) < 0.01 and np.percentile(difference, 95) < 0.05
    # ... and the mirrored side is not simply a copy of one colour.
    assert image[rows, cols].std(0).max() > 0.1


def test_seen_texels_carry_the_photo_colours(surface, side_camera, side_texture):
    # The texel facing the camera most directly: its colour is the photo's at its projection.
    photo = gradient_photo()
    point = np.array([np.sin(np.radians(60)) * 0.075, 0.0, np.cos(np.radians(60)) * 0.095])
    pixel, _ = side_camera.project(point[None])
    expected = photo[int(pixel[0, 1]), int(pixel[0, 0])] / 255.0
    u = (np.arctan2(point[0] / 0.075, point[2] / 0.095) + np.pi) / (2 * np.pi)
    texel = side_texture.image[SIZE // 2, int(u * SIZE)]
    assert side_texture.origin[SIZE // 2, int(u * SIZE)] == Origin.PHOTO
    assert np.abs(texel - expected).max() < 0.03


@pytest.fixture(scope="module")
def labelled_texture(surface, side_camera):
    """Mouth-interior faces (any labelled set) and a face region (the lower half) given."""
    dark = np.zeros(len(surface.faces), bool)
    dark[:200] = True
    labelled = replace(surface, dark_faces=dark, trusted_vertices=surface.vertices[:, 1] < 0)
    return bake_texture(labelled, gradient_photo(), side_camera, SIZE)


def test_mouth_interior_faces_are_dark(labelled_texture):
    mouth = labelled_texture.origin == Origin.MOUTH
    assert mouth.any()
    assert np.allclose(labelled_texture.image[mouth], MOUTH_INTERIOR_COLOR, atol=1e-6)


def test_untrusted_vertices_take_no_photo_colour(labelled_texture):
    from_photo = np.isin(labelled_texture.origin, (Origin.PHOTO, Origin.MIRROR))
    v = 1.0 - (np.nonzero(from_photo)[0] + 0.5) / SIZE  # texture rows -> v; v > 0.5 is the top
    assert from_photo.any() and (v < 0.52).all()


def test_photo_mask_limits_which_pixels_colour_the_head(surface, side_camera):
    upper_half = lambda pixels: pixels[:, 1] < 128  # noqa: E731  (photo rows 0..127 only)
    texture = bake_texture(replace(surface, uv_coords=None, uv_faces=None), gradient_photo(),
                           side_camera, photo_mask=upper_half)
    pixels, _ = side_camera.project(surface.vertices)
    from_photo = texture.origin == Origin.PHOTO
    assert from_photo.any() and (pixels[from_photo, 1] < 128).all()


def test_without_uvs_the_colours_are_per_vertex(surface, side_camera):
    bare = replace(surface, uv_coords=None, uv_faces=None)
    texture = bake_texture(bare, gradient_photo(), side_camera)
    assert texture.image is None and texture.vertex_colors.shape == (len(surface.vertices), 3)
    seen_side = surface.vertices[:, 0] > 0.06
    assert (texture.origin[seen_side] == Origin.PHOTO).all()
    mirrored = np.flatnonzero(surface.vertices[:, 0] < -0.06)
    assert (texture.origin[mirrored] == Origin.MIRROR).all()


def test_harmonic_fill_is_monotone_between_known_ends_and_anchors_isolated_parts():
    # A strip of triangles along two rails (vertex 2i and 2i + 1 at step i), one end black
    # and the other white, plus a lone triangle that nothing colours.
    n = 11
    faces = np.array([[2 * i, 2 * i + 1, 2 * i + 2] for i in range(n - 1)]
                     + [[2 * i + 1, 2 * i + 3, 2 * i + 2] for i in range(n - 1)]
                     + [[2 * n, 2 * n + 1, 2 * n + 2]])
    vertices = np.zeros((2 * n + 3, 3))
    samples = vertex_samples(Surface(vertices, faces))
    colors = np.zeros((len(samples.index), 3))
    confidence = np.zeros(len(samples.index))
    colors[np.isin(samples.index, [2 * n - 2, 2 * n - 1])] = 1.0
    confidence[np.isin(samples.index, [0, 1, 2 * n - 2, 2 * n - 1])] = 1.0
    values = harmonic_fill(faces, len(vertices), samples, colors, confidence)
    rail = values[: 2 * n : 2, 0]
    assert rail[0] == 0.0 and rail[-1] == 1.0 and (np.diff(rail) > 0.05).all()
    assert np.allclose(values[2 * n:], 0.5, atol=1e-3)  # the mean of what is known


@pytest.mark.parametrize("size", [8, 100_000])
def test_impossible_texture_sizes_are_refused(surface, side_camera, size):
    with pytest.raises(JokerError, match="texture size"):
        bake_texture(surface, gradient_photo(), side_camera, size)

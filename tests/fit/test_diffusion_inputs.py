"""The diffusion prior is handed the reference and the views as the authors prepared its
training data: the published crop of the photo, and views framed on the rig's five points."""

import logging

import numpy as np
import pytest
import skimage.data
import torch

from joker.fit.crop import OUTPUT, crop_frame, five_points, published_crop, template_pixels
from joker.fit.diffusion_inputs import _rig_68, framed_views, photo_five_points, reference_crop
from joker.fit.landmarks import detect_landmarks
from joker.fit.solve import FitSettings, fit_photo
from joker.generation.job import prepare
from joker.prior.diffusion.pipeline import DiffusionPrior
from joker_core.demo_head import load_demo_head
from joker_core.framing import head_view_rig
from joker_core.lbs import numpy_rig, pose
from joker_core.protocol import JobSpec
from joker_core.rig_params import RigParams
from tiny_engine import TINY
from tiny_prior import tiny_prior_model

SIZE = 32  # the tiny prior's


@pytest.fixture(scope="module")
def astronaut():
    return skimage.data.astronaut()


@pytest.fixture(scope="module")
def head():
    return load_demo_head()


@pytest.fixture(scope="module")
def prior(tmp_path_factory):
    return DiffusionPrior(tiny_prior_model(tmp_path_factory.mktemp("tokenizer"), image_size=SIZE))


@pytest.fixture(scope="module")
def job(astronaut, prior, tmp_path_factory):
    """A diffusion-prior job, prepared (the reference fitted, the views rendered)."""
    spec = JobSpec.from_dict({"preset": "scream", "quality": "preview", "device": "cpu",
                              "prior": {"name": "joker", "weights": "/weights/are/not/read.bin"}})
    return prepare(astronaut, spec, tmp_path_factory.mktemp("inputs"), preset_override=TINY.preset, prior=prior)


def test_the_reference_is_the_published_crop_and_views_align_as_its_faces(astronaut, head):
    expected, _ = published_crop(astronaut, five_points(detect_landmarks(astronaut).points))
    assert np.array_equal(reference_crop(astronaut, None, head), expected)
    params = RigParams(jaw_pose=[0.3, 0, 0])
    five = five_points(_rig_68(head, pose(numpy_rig(head), params).vertices))
    for camera in framed_views(head_view_rig(head, size=SIZE).grid(3, 2, 45, 20), head, params):
        pixels, _ = camera.project(five)
        again = crop_frame(pixels * OUTPUT / SIZE, OUTPUT, OUTPUT)  # already its own published crop
        assert abs(again.scale_x - 1) < 0.01 and np.abs(again.offset).max() < 3, (again.scale_x, again.offset)


@pytest.mark.slow  # `make test-slow`: two fits of the photo, a prepared job and a tiny prior
def test_the_five_point_path_crops_within_a_few_pixels(astronaut, head, job):
    detected = five_points(detect_landmarks(astronaut).points)
    _, frame = published_crop(astronaut, detected)
    # The 5-point model has no nose tip or mouth: the fitted rig, seen through the fitted
    # camera, gives them: a coarser crop (the rig's mouth, not hers, sits ~10 px lower).
    coarse = fit_photo(astronaut, head, FitSettings(landmark_model="5"))
    points = photo_five_points(astronaut, coarse, head)
    assert np.abs(points[:2] - detected[:2]).max() < 1.5  # the detected eyes themselves
    assert np.abs(points - detected).max() < 15  # px in the photo; measured 10.4 at the mouth
    moved = crop_frame(points, 512, 512).to_crop(detected) - frame.to_crop(detected)
    assert np.abs(moved).max() < 35  # px in the 512 crop; measured 29 (the face sits higher)


def test_a_photo_without_a_face_gives_its_central_square_and_says_so(head, caplog):
    landscape = np.zeros((100, 160, 3), np.uint8)
    landscape[:, 30:130] = 200
    with caplog.at_level(logging.WARNING, logger="joker.fit.diffusion_inputs"):
        crop = reference_crop(landscape, None, head, size=50)
    assert crop.shape == (50, 50, 3) and crop.min() == 200 and "central square" in caplog.text


@pytest.mark.slow  # `make test-slow`: a prepared job and a tiny prior
def test_a_diffusion_job_gets_the_crop_and_framed_views(astronaut, head, prior, job):
    expected = reference_crop(astronaut, job.fit, head, SIZE)
    assert job.condition.reference.shape == (1, 3, SIZE, SIZE)
    assert np.allclose(job.condition.reference[0].permute(1, 2, 0).numpy() * 255, expected, atol=0.5)
    # Each view is already the published crop of itself: aligning the posed rig's five
    # points as the authors align a face changes nothing (up to their integer truncations).
    five = five_points(_rig_68(head, job.posed_vertices))
    for camera in job.views.cameras:
        pixels, _ = camera.project(five)
        again = crop_frame(pixels * OUTPUT / SIZE, OUTPUT, OUTPUT)
        assert abs(again.scale_x - 1) < 0.01 and np.abs(again.offset).max() < 3, (again.scale_x, again.offset)
    renders = job.views.silhouettes.repeat(1, 3, 1, 1)
    targets = prior.predict_clean(prior.noise(renders, 5), job.views, job.condition)  # the prior takes them
    assert targets.shape == renders.shape and torch.isfinite(targets).all()

"""The shared job protocol: what the add-on validates before sending."""

from __future__ import annotations

import json

import numpy as np
import pytest

from joker_core.errors import JokerError
from joker_core.protocol import FieldError, JobSpec, JobState, JobStatus, ProgressEvent

CAMERA = {"c2w": np.eye(4).tolist(), "fx": 500.0, "fy": 500.0, "cx": 256.0, "cy": 256.0, "width": 512, "height": 512}


def test_a_full_spec_survives_json_and_back():
    spec = JobSpec.from_dict({
        "rig": {"expression": [0.5] * 10, "jaw_pose": [0.3, 0.0, 0.0]}, "prompt": "screaming, tongue out",
        "negative_prompt": "blurry", "views": {"grid": [5, 3], "azimuth_range": 60, "size": 256},
        "quality": "preview", "prior": {"name": "joker", "weights": "/w/prior.bin"}, "seed": 42, "device": "cuda:0",
        "blender_views": [{"camera": CAMERA, "normal_map": "view_000.png"}], "material": "unlit"})
    assert JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec
    assert spec.views.grid == (5, 3) and spec.blender_views[0].camera["width"] == 512


def test_presets_are_checked_and_named_canonically():
    assert JobSpec.from_dict({"preset": "Scream"}).preset == "scream"


def test_defaults_are_the_weight_free_prior_at_standard_quality():
    spec = JobSpec.from_dict({})
    assert (spec.prior.name, spec.quality, spec.device, spec.seed) == ("projection", "standard", "auto", 0)


@pytest.mark.parametrize("data, field", [
    ({"preset": "scream", "rig": {}}, "spec.rig"),
    ({"preset": "../etc"}, "spec.preset"),
    ({"preset": 3}, "spec.preset"),
    ({"rig": {"jaw_pose": [0.1, 0.2]}}, "spec.rig.jaw_pose"),
    ({"rig": {"expression": [0.0] * 101}}, "spec.rig.expression"),
    ({"rig": {"shape": [0.0, "a"]}}, "spec.rig.shape"),
    ({"rig": {"neck_pose": [0.0, 1e400, 0.0]}}, "spec.rig.neck_pose"),
    ({"rig": {"tail": [1.0]}}, "spec.rig.tail"),
    ({"views": {"grid": [3]}}, "spec.views.grid"),
    ({"views": {"grid": [3, 3], "count": 9}}, "spec.views.count"),
    ({"views": {"elevation_range": 95}}, "spec.views.elevation_range"),
    ({"quality": "best"}, "spec.quality"),
    ({"material": "emissive"}, "spec.material"),
    ({"prior": {"name": "joker"}}, "spec.prior.weights"),
    ({"seed": -1}, "spec.seed"),
    ({"seed": 1.5}, "spec.seed"),
    ({"device": "gpu"}, "spec.device"),
    ({"prompt": "x" * 2001}, "spec.prompt"),
    ({"blender_views": [{"camera": {**CAMERA, "fx": -1}, "normal_map": "a.png"}]}, "spec.blender_views[0].camera"),
    ({"blender_views": [{"camera": {**CAMERA, "width": 1e400}, "normal_map": "a.png"}]}, "spec.blender_views[0].camera"),
    ({"blender_views": [{"camera": CAMERA}]}, "spec.blender_views[0].normal_map"),
    ({"blender_views": [{"camera": {**CAMERA, "fy": 1e400}, "normal_map": "a.png"}]}, "spec.blender_views[0].camera.fy"),
    ({"colour": "red"}, "spec.colour"),
])
def test_each_wrong_field_is_named_with_a_fix(data, field):
    with pytest.raises(FieldError) as error:
        JobSpec.from_dict(data)
    assert error.value.field == field
    assert str(error.value).startswith(f"{field}: ") and "Fix: " in str(error.value)


def test_a_spec_must_be_an_object():
    with pytest.raises(FieldError, match="expected a JSON object, got list"):
        JobSpec.from_dict([1, 2])


def test_progress_is_a_fraction_and_round_trips():
    event = ProgressEvent("distill", 0.5, eta_s=12.0, prior_evaluations=800, nerf_steps=1000, preview="/tmp/p.png")
    assert ProgressEvent.from_dict(event.to_dict()) == event
    with pytest.raises(JokerError):
        ProgressEvent("distill", 1.5)


def test_job_states_and_status_round_trip():
    assert [s for s in JobState if not s.finished] == [JobState.QUEUED, JobState.RUNNING]
    status = JobStatus("abc", JobState.SUCCEEDED, 1.0, artifacts=("head.glb",))
    assert JobStatus.from_dict(json.loads(json.dumps(status.to_dict()))) == status


def test_model_alignment_and_prior_folders_round_trip_and_are_checked():
    spec = JobSpec.from_dict({"preset": "scream", "model": "/models/flame2023.pkl",
                              "alignment": {"eyes": [[200, 240], [290, 238]], "fov_deg": 25},
                              "prior": {"name": "joker", "weights": "/w/prior.bin", "sd15": "/w/sd15"}})
    assert JobSpec.from_dict(spec.to_dict()) == spec
    assert spec.model == "/models/flame2023.pkl" and spec.prior.sd15 == "/w/sd15"
    for bad, field in (({"alignment": {"eyes": [[1, 2]]}}, "spec.alignment.eyes"),
                       ({"alignment": {"fov_deg": 500}}, "spec.alignment.fov_deg"),
                       ({"alignment": {"nose": [1, 2]}}, "spec.alignment.nose"),
                       ({"model": 7}, "spec.model")):
        with pytest.raises(FieldError) as error:
            JobSpec.from_dict(bad)
        assert error.value.field == field and "Fix:" in str(error.value)

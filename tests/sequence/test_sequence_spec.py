"""SequenceSpec: shared settings plus one FrameSpec per frame, validated field by field."""

import pytest

from joker_core.protocol import FieldError, JobSpec, SequenceSpec, parse_spec
from joker_core.rig_params import RigParams

CAMERA = {"c2w": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0.6], [0, 0, 0, 1]],
          "fx": 40.0, "fy": 40.0, "cx": 16.0, "cy": 16.0, "width": 32, "height": 32}
DATA = {"job": {"prompt": "a person", "quality": "preview", "seed": 4},
        "frames": [{"preset": "neutral"},
                   {"rig": {"jaw_pose": [0.2, 0, 0]}, "prompt": "mouth open",
                    "blender_views": [{"camera": CAMERA, "normal_map": "f2_v0.png"}]}],
        "frame_start": 101, "frame_step": 5}


def test_each_frame_becomes_a_single_head_job_with_the_shared_settings():
    spec = parse_spec(DATA)
    assert isinstance(spec, SequenceSpec) and SequenceSpec.from_dict(spec.to_dict()) == spec
    first, second = spec.frame_job(0), spec.frame_job(1)
    assert first == JobSpec(preset="neutral", prompt="a person", quality="preview", seed=4)
    assert second.rig == RigParams(jaw_pose=[0.2, 0.0, 0.0]) and second.prompt == "mouth open"
    assert [spec.frame_number(i) for i in range(2)] == [101, 106]
    assert [view.normal_map for view in spec.blender_views] == ["f2_v0.png"]


def test_per_frame_textures_is_off_unless_asked_for():
    assert not parse_spec(DATA).per_frame_textures
    spec = parse_spec({**DATA, "per_frame_textures": True})
    assert spec.per_frame_textures and SequenceSpec.from_dict(spec.to_dict()) == spec


def test_a_spec_without_frames_is_a_single_head_job():
    assert parse_spec({"preset": "scream"}) == JobSpec(preset="scream")


@pytest.mark.parametrize("change, field", [
    ({"frames": []}, "spec.frames"),
    ({"frames": [{"preset": "no such face"}]}, "spec.frames[0].preset"),
    ({"frames": [{"preset": "neutral", "seed": 3}]}, "spec.frames[0].seed"),
    ({"job": {"preset": "scream"}}, "spec.job.preset"),
    ({"frame_step": 0}, "spec.frame_step"),
    ({"per_frame_textures": "yes"}, "spec.per_frame_textures"),
    ({"frames": [{"preset": "neutral"}, {"rig": {"jaw_pose": [0.1]}}]}, "spec.frames[1].rig.jaw_pose"),
])
def test_a_wrong_field_is_named_with_its_fix(change, field):
    with pytest.raises(FieldError) as error:
        parse_spec({**DATA, **change})
    assert error.value.field == field and error.value.fix

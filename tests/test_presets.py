"""Expression presets: named, valid for the demo head and for FLAME-layout files, with prompts."""

import numpy as np
import pytest

from flame_fixtures import make_small_head_model
from joker_core.demo_head import build_demo_head
from joker_core.demo_head.expressions import EXPRESSION_NAMES
from joker_core.errors import JokerError
from joker_core.lbs import numpy_rig, pose
from joker_core.presets import get_preset, list_presets
from joker_core.rig_params import RigParams

REQUIRED = ("scream", "big_laugh", "disgust", "anger", "surprise", "tongue_out", "crooked_smile")


@pytest.fixture(scope="module")
def demo_head():
    return build_demo_head()


@pytest.fixture(scope="module")
def flame_layout():
    """FLAME's component counts (300 identity, 100 expression) and no component names."""
    return make_small_head_model(n_shape=300, n_expr=100)


def test_the_extreme_expressions_are_there_with_prompts():
    names = list_presets()
    assert set(REQUIRED) <= set(names) and len(names) >= len(REQUIRED) + 3
    assert len(set(names)) == len(names)
    for name in names:
        preset = get_preset(name)
        assert preset.name == name and len(preset.prompt) > 20


def test_every_action_a_preset_uses_is_a_demo_head_expression():
    for name in list_presets():
        assert set(get_preset(name).actions) <= set(EXPRESSION_NAMES), name


def test_on_the_demo_head_presets_fill_the_named_expression_components(demo_head):
    for name in list_presets():
        preset = get_preset(name)
        params = preset.params_for(demo_head)
        assert isinstance(params, RigParams)
        assert params.shape.shape == (demo_head.n_shape,) and params.expression.shape == (demo_head.n_expr,)
        for action, weight in preset.actions.items():
            assert params.expression[demo_head.expression_names.index(action)] == weight
        assert np.count_nonzero(params.expression) == len(preset.actions)
        assert np.isfinite(pose(numpy_rig(demo_head), params).vertices).all()


def test_on_a_flame_file_presets_carry_only_poses(flame_layout):
    rig = numpy_rig(flame_layout)
    for name in list_presets():
        preset = get_preset(name)
        params = preset.params_for(flame_layout)
        assert params.shape.shape == (300,) and params.expression.shape == (100,)
        assert not params.expression.any()
        assert np.allclose(params.jaw_pose, preset.jaw_pose) and np.allclose(params.neck_pose, preset.neck_pose)
        assert np.isfinite(pose(rig, params).vertices).all()
    assert get_preset("scream").params_for(flame_layout).jaw_pose[0] > 0.3


def lip_gap(head, params):
    vertices = pose(numpy_rig(head), params).vertices
    return np.linalg.norm(vertices[head.landmarks["upper_lip"]] - vertices[head.landmarks["lower_lip"]])


def test_the_extreme_presets_look_like_their_names_on_the_demo_head(demo_head):
    lm = demo_head.landmarks
    assert lip_gap(demo_head, get_preset("scream").params_for(demo_head)) > 0.03
    assert lip_gap(demo_head, get_preset("neutral").params_for(demo_head)) < 1e-9
    crooked = pose(numpy_rig(demo_head), get_preset("crooked_smile").params_for(demo_head)).vertices
    rise = crooked[[lm["mouth_left"], lm["mouth_right"]], 1] - demo_head.v_template[[lm["mouth_left"], lm["mouth_right"]], 1]
    assert rise[0] > 0.005 and rise[0] > 3 * abs(rise[1])
    tongue = demo_head.metadata["vertex_parts"]["tongue"]
    out = pose(numpy_rig(demo_head), get_preset("tongue_out").params_for(demo_head)).vertices
    assert out[tongue[0]:tongue[1], 2].max() > out[lm["lower_lip"], 2] + 0.005  # the tip is past the lips


def test_unknown_preset_names_the_known_ones():
    with pytest.raises(JokerError) as caught:
        get_preset("grimace-of-doom")
    message = str(caught.value)
    assert "grimace-of-doom" in message and all(name in message for name in list_presets())
    assert get_preset("Big-Laugh") is get_preset("big_laugh")

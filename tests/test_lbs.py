import dataclasses
import json

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from flame_fixtures import make_small_head_model
from joker.rig.lbs_torch import batch_params, lbs, torch_rig
from joker_core.errors import JokerError
from joker_core.lbs import numpy_rig, pose, rotation_deltas
from joker_core.rig_params import POSE_FIELDS, RigParams

MODEL = make_small_head_model()
RIG = numpy_rig(MODEL)


def random_params(rng: np.random.Generator, n_shape: int = 300, n_expr: int = 100) -> RigParams:
    poses = {name: rng.normal(scale=0.3, size=3) for name in POSE_FIELDS}
    return RigParams(shape=rng.normal(size=n_shape), expression=rng.normal(size=n_expr),
                     translation=rng.normal(scale=0.05, size=3), **poses)


def textbook_lbs(model, params: RigParams) -> tuple[np.ndarray, np.ndarray]:
    """FLAME as the SMPL paper writes it: 4x4 joint transforms, scipy rotations, one head."""
    params = params.validated(model)
    v_shaped = model.v_template + model.shapedirs @ np.concatenate([params.shape, params.expression])
    joints = model.J_regressor @ v_shaped
    rotations = [Rotation.from_rotvec(r).as_matrix() for r in params.rotations]
    v_posed = v_shaped + model.posedirs @ np.concatenate([(r - np.eye(3)).ravel() for r in rotations[1:]])
    world = []
    for joint, parent in enumerate(model.parents):
        local = np.eye(4)
        local[:3, :3] = rotations[joint]
        local[:3, 3] = joints[joint] - (joints[parent] if parent >= 0 else 0.0)
        world.append(local if parent < 0 else world[parent] @ local)
    skinning = np.stack(world)
    skinning[:, :3, 3] -= np.einsum("jab,jb->ja", skinning[:, :3, :3], joints)
    blended = np.einsum("nj,jab->nab", model.weights, skinning)
    homogeneous = np.column_stack([v_posed, np.ones(len(v_posed))])
    vertices = np.einsum("nab,nb->na", blended, homogeneous)[:, :3]
    posed_joints = np.stack([transform[:3, 3] for transform in world])
    return vertices + params.translation, posed_joints + params.translation


def test_zero_parameters_give_the_template_exactly_in_numpy_and_torch():
    assert np.array_equal(pose(RIG, RigParams()).vertices, MODEL.v_template)
    for dtype in (torch.float32, torch.float64):
        rig = torch_rig(MODEL, dtype=dtype)
        vertices = lbs(rig, batch_size=2).vertices
        assert vertices.dtype == dtype and vertices.shape == (2, MODEL.n_vertices, 3)
        assert torch.equal(vertices, rig.v_template.expand(2, -1, -1))


def test_jaw_rotation_moves_exactly_the_jaw_weighted_vertices():
    posed = pose(RIG, RigParams(jaw_pose=[0.35, 0.05, 0.0]))
    moved = np.linalg.norm(posed.vertices - MODEL.v_template, axis=1) > 0
    jaw_weighted = MODEL.weights[:, 2] > 0
    assert jaw_weighted.sum() > 20 and (~jaw_weighted).sum() > 200
    assert np.array_equal(moved, jaw_weighted)
    # the jaw joint itself stays put; the joints below it in the tree do not exist
    assert np.allclose(posed.joints, MODEL.J_regressor @ MODEL.v_template)


def test_numpy_forward_matches_the_textbook_formulation():
    rng = np.random.default_rng(7)
    for _ in range(3):
        params = random_params(rng)
        posed = pose(RIG, params)
        vertices, joints = textbook_lbs(MODEL, params)
        assert np.abs(posed.vertices - vertices).max() < 1e-12
        assert np.abs(posed.joints - joints).max() < 1e-12


def test_rotation_deltas_are_rodrigues_including_tiny_and_zero_angles():
    rng = np.random.default_rng(3)
    axis_angle = np.concatenate([rng.normal(size=(20, 3)), rng.normal(size=(5, 3)) * 1e-7, np.zeros((1, 3))])
    expected = Rotation.from_rotvec(axis_angle).as_matrix() - np.eye(3)
    assert np.abs(rotation_deltas(RIG, axis_angle) - expected).max() < 1e-14


def test_numpy_and_torch_agree_on_random_batches():
    rng = np.random.default_rng(11)
    params = [random_params(rng, n_shape=int(rng.integers(0, 301)), n_expr=int(rng.integers(0, 101)))
              for _ in range(5)]
    expected = [pose(RIG, p) for p in params]
    for dtype, tolerance in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        rig = torch_rig(MODEL, dtype=dtype)
        posed = lbs(rig, **batch_params(params, rig))
        assert posed.vertices.dtype == dtype and posed.joints.dtype == dtype
        for index, reference in enumerate(expected):
            assert np.abs(posed.vertices[index].numpy() - reference.vertices).max() < tolerance
            assert np.abs(posed.joints[index].numpy() - reference.joints).max() < tolerance


def test_torch_gradients_reach_every_parameter_and_are_correct():
    model = make_small_head_model(n_shape=4, n_expr=3)
    rig = torch_rig(model, dtype=torch.float64)
    rng = np.random.default_rng(5)
    inputs = {name: torch.tensor([value], dtype=torch.float64, requires_grad=True)
              for name, value in random_params(rng, n_shape=4, n_expr=3).to_dict().items()}
    posed = lbs(rig, **inputs)
    weights = torch.tensor(rng.normal(size=posed.vertices.shape))
    ((posed.vertices * weights).sum() + posed.joints.sum()).backward()
    for name, tensor in inputs.items():
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0, name

    names = list(inputs)
    projection = torch.tensor(rng.normal(size=(model.n_vertices * 3, 4)))

    def projected_vertices(*values):  # a few random projections keep gradcheck fast
        return lbs(rig, **dict(zip(names, values))).vertices.reshape(1, -1) @ projection

    fresh = [t.detach().clone().requires_grad_() for t in inputs.values()]
    assert torch.autograd.gradcheck(projected_vertices, fresh, fast_mode=True)
    zeros = [torch.zeros_like(t, requires_grad=True) for t in inputs.values()]
    assert torch.autograd.gradcheck(projected_vertices, zeros, fast_mode=True)  # finite, correct gradient at the rest pose


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    params = [random_params(np.random.default_rng(2))]
    cpu_rig, gpu_rig = torch_rig(MODEL), torch_rig(MODEL, device="cuda")
    cpu = lbs(cpu_rig, **batch_params(params, cpu_rig)).vertices
    gpu = lbs(gpu_rig, **batch_params(params, gpu_rig)).vertices
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() - cpu).abs().max() < 1e-5


@pytest.mark.parametrize("field, length, limit", [("shape", 301, 300), ("expression", 150, 100)])
def test_vectors_longer_than_the_model_supports_are_refused_by_name(field, length, limit):
    params = RigParams(**{field: np.ones(length)})
    with pytest.raises(JokerError, match=rf"'{field}' has {length} values but the model supports at most {limit}"):
        params.validated(MODEL)
    rig = torch_rig(MODEL)
    with pytest.raises(JokerError, match=rf"'{field}' has {length} values"):
        lbs(rig, **{field: torch.ones(1, length)})


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_parameters_are_refused(bad):
    with pytest.raises(JokerError, match="'jaw_pose' contains NaN or inf"):
        RigParams(jaw_pose=[0.1, bad, 0.0])
    with pytest.raises(JokerError, match="'expression' contains NaN or inf"):
        RigParams.from_dict({"expression": [0.0, bad]})


@pytest.mark.parametrize("data, message", [
    ({"neck_pose": [0.1, 0.2]}, r"'neck_pose' has 2 values, expected 3 \(axis-angle radians\)"),
    ({"translation": [0, 0, 0, 1]}, r"'translation' has 4 values, expected 3 \(metres\)"),
    ({"shape": [[1.0, 2.0]]}, r"'shape' has shape \(1, 2\), expected a flat list"),
    ({"shape": ["a"]}, r"'shape' is not a list of numbers"),
    ({"jaw": [0.3, 0, 0]}, r"unknown rig parameter 'jaw'"),
])
def test_malformed_parameters_name_the_field(data, message):
    with pytest.raises(JokerError, match=message):
        RigParams.from_dict(data)


def test_shorter_vectors_are_zero_padded_and_json_round_trips():
    params = RigParams.from_dict({"shape": [0.5, -1.0], "jaw_pose": [0.2, 0, 0]})
    padded = params.validated(MODEL)
    assert padded.shape.shape == (300,) and padded.expression.shape == (100,)
    assert np.array_equal(padded.shape[:2], [0.5, -1.0]) and not padded.shape[2:].any()
    assert params.shape.shape == (2,)  # validated() returns a copy
    again = RigParams.from_dict(json.loads(json.dumps(padded.to_dict())))
    for field in dataclasses.fields(RigParams):
        assert np.array_equal(getattr(again, field.name), getattr(padded, field.name)), field.name
    assert np.array_equal(pose(RIG, params).vertices, pose(RIG, padded).vertices)


def test_a_kinematic_tree_out_of_order_is_refused():
    model = dataclasses.replace(MODEL, kintree_table=np.array([[-1, 0, 3, 1, 1], [0, 1, 2, 3, 4]]))
    with pytest.raises(JokerError, match="each joint's parent must come before it"):
        numpy_rig(model)

"""FLAME's forward pass (linear blend skinning), written once for numpy and torch.

The algorithm only uses operations that numpy and torch spell the same way (`@`, einsum,
sin/cos/sqrt, stack, reshape, indexing), so `forward` runs on whichever array library the
`RigArrays` were built with: numpy here (the add-on, tests), torch in `joker.rig`
(batched, differentiable, CUDA). Steps, as in FLAME:

1. identity + expression blendshapes on the template; joints regressed from that shape;
2. pose correctives: (R - I) of the non-root joints, flattened, times the pose basis;
3. per-joint rotations (Rodrigues) chained down the kinematic tree;
4. skinning with the per-vertex weights, then the global translation.

Rotations are carried as (R - I) and joint transforms as rest-relative rigid motions, so
zero parameters reproduce the template bit for bit and small rotations keep precision in
float32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .errors import JokerError
from .head_model import HeadModel
from .rig_params import RigParams, check_length

Array = Any  # a numpy array or a torch tensor; one library per RigArrays

# theta = sqrt(|r|^2 + eps^2) keeps Rodrigues smooth (and its gradient finite) at r = 0.
_ANGLE_EPS = 1e-8


def _levi_civita() -> np.ndarray:
    tensor = np.zeros((3, 3, 3))
    for i, j, k in ((0, 1, 2), (1, 2, 0), (2, 0, 1)):
        tensor[i, j, k], tensor[i, k, j] = 1.0, -1.0
    return tensor


@dataclass(frozen=True)
class RigArrays:
    """A head model's arrays in one array library, laid out for the forward pass."""

    xp: Any                 # the array library: numpy or torch
    v_template: Array       # N x 3
    shape_basis: Array      # (n_shape + n_expr) x 3N: FLAME's shapedirs, one row per component
    pose_basis: Array       # 9(J-1) x 3N: FLAME's posedirs, one row per (R - I) entry
    joint_regressor: Array  # J x N
    weights: Array          # N x J
    levi_civita: Array      # 3 x 3 x 3: builds cross-product matrices on the rig's device
    parents: tuple[int, ...]
    n_shape: int
    n_expr: int


def rig_arrays(model: HeadModel, xp: Any, convert: Callable[[np.ndarray], Array]) -> RigArrays:
    """Lay out `model` for `forward`; `convert` turns each numpy array into `xp`'s kind."""
    parents = tuple(int(p) for p in model.parents)
    if any(not 0 <= parent < joint for joint, parent in enumerate(parents) if joint > 0):
        raise JokerError(f"head model kintree_table lists parents {parents[1:]}; each joint's parent must come before it",
                         "re-export the model with FLAME's joint order (global, neck, jaw, eyes)")
    n = model.n_vertices
    return RigArrays(
        xp=xp,
        v_template=convert(model.v_template),
        shape_basis=convert(model.shapedirs.reshape(3 * n, -1).T),
        pose_basis=convert(model.posedirs.reshape(3 * n, -1).T),
        joint_regressor=convert(model.J_regressor),
        weights=convert(model.weights),
        levi_civita=convert(_levi_civita()),
        parents=parents,
        n_shape=model.n_shape,
        n_expr=model.n_expr,
    )


def numpy_rig(model: HeadModel, dtype: Any = np.float64) -> RigArrays:
    return rig_arrays(model, np, lambda array: np.ascontiguousarray(array, dtype=dtype))


@dataclass(frozen=True)
class Posed:
    vertices: Array  # B x N x 3
    joints: Array    # B x J x 3


def rotation_deltas(rig: RigArrays, axis_angle: Array) -> Array:
    """... x 3 axis-angle -> ... x 3 x 3 rotation matrices minus the identity (Rodrigues).

    With theta = |r| and K the cross-product matrix of r:
    R - I = (sin theta / theta) K + ((1 - cos theta) / theta^2) K^2
          = w a K + a^2 / 2 K^2,  w = cos(theta/2), a = 2 sin(theta/2) / theta,
    which stays accurate as theta -> 0 (a -> 1).
    """
    xp = rig.xp
    theta = xp.sqrt(xp.sum(axis_angle * axis_angle, axis=-1) + _ANGLE_EPS ** 2)[..., None, None]
    half = theta / 2
    w, a = xp.cos(half), xp.sin(half) / half
    cross = -xp.einsum("ijk,...k->...ij", rig.levi_civita, axis_angle)
    return w * a * cross + (a * a / 2) * (cross @ cross)


def forward(rig: RigArrays, shape: Array, expression: Array, rotations: Array, translation: Array) -> Posed:
    """Pose a batch of heads.

    shape: B x S (S <= n_shape), expression: B x E (E <= n_expr); missing components are
    zero. rotations: B x J x 3 axis-angle in joint order. translation: B x 3.
    """
    check_length("shape", shape.shape[-1], rig.n_shape)
    check_length("expression", expression.shape[-1], rig.n_expr)
    batch = rotations.shape[0]

    offsets = shape @ rig.shape_basis[: shape.shape[-1]]
    offsets = offsets + expression @ rig.shape_basis[rig.n_shape: rig.n_shape + expression.shape[-1]]
    v_shaped = rig.v_template + offsets.reshape(batch, -1, 3)
    rest_joints = rig.joint_regressor @ v_shaped  # B x J x 3

    deltas = rotation_deltas(rig, rotations)      # B x J x 3 x 3, R - I
    pose_feature = deltas[:, 1:].reshape(batch, -1)
    v_posed = v_shaped + (pose_feature @ rig.pose_basis).reshape(batch, -1, 3)

    motion = skinning_motion(rig, deltas, rest_joints)
    joints = rest_joints + _apply(motion.joint_deltas, rest_joints) + motion.joint_shifts
    vertices = v_posed + _apply(motion.vertex_deltas, v_posed) + motion.vertex_shifts
    # Skinning the displacement (R_blend - I) v + t rather than R_blend v + t is the same
    # maths when the weights sum to one, and exact for the rest pose when they do not quite.
    offset = translation[:, None, :]
    return Posed(vertices=vertices + offset, joints=joints + offset)


@dataclass(frozen=True)
class SkinningMotion:
    """Rigid motion of each joint and its weighted blend at each vertex, as x -> x + D x + t."""

    joint_deltas: Array   # B x J x 3 x 3
    joint_shifts: Array   # B x J x 3
    vertex_deltas: Array  # B x N x 3 x 3
    vertex_shifts: Array  # B x N x 3


def skinning_motion(rig: RigArrays, deltas: Array, rest_joints: Array) -> SkinningMotion:
    """Skinning transforms for joints resting at `rest_joints` (B x J x 3) and rotated by
    `deltas` (B x J x 3 x 3, R - I). The shifts are linear in `rest_joints`, which lets
    the Blender rig correct for joints that FLAME regresses from the posed expression."""
    batch = deltas.shape[0]
    joint_deltas, joint_shifts = _chain(rig, deltas, rest_joints)
    vertex_deltas = (rig.weights @ joint_deltas.reshape(batch, -1, 9)).reshape(batch, -1, 3, 3)
    return SkinningMotion(joint_deltas, joint_shifts, vertex_deltas, rig.weights @ joint_shifts)


def _apply(deltas: Array, points: Array) -> Array:
    """Batched (R - I) @ p for ... x 3 x 3 deltas and ... x 3 points (a broadcast product:
    thousands of 3 x 3 matmuls are slow as a batched matmul in torch)."""
    return (deltas * points[..., None, :]).sum(axis=-1)


def _chain(rig: RigArrays, deltas: Array, rest_joints: Array) -> tuple[Array, Array]:
    """World motion of each joint as x -> x + D x + t (D = R - I), relative to the rest pose.

    Joint j rotates about its rest position: local D_j, t_j = -D_j J_j; its world motion
    is its parent's composed with that: D = Dp + D_j + Dp D_j, t = t_j + Dp t_j + tp.
    """
    world_d: list[Array] = []
    world_t: list[Array] = []
    for joint, parent in enumerate(rig.parents):
        local_d = deltas[:, joint]
        local_t = -_apply(local_d, rest_joints[:, joint])
        if parent < 0:
            world_d.append(local_d)
            world_t.append(local_t)
            continue
        parent_d, parent_t = world_d[parent], world_t[parent]
        world_d.append(parent_d + local_d + parent_d @ local_d)
        world_t.append(local_t + _apply(parent_d, local_t) + parent_t)
    xp = rig.xp
    return xp.stack(world_d, axis=1), xp.stack(world_t, axis=1)


def pose(rig: RigArrays, params: RigParams) -> Posed:
    """One head posed with numpy: vertices N x 3 and joints J x 3."""
    params = params.validated(rig)
    posed = forward(rig, params.shape[None], params.expression[None], params.rotations[None],
                    params.translation[None])
    return Posed(vertices=posed.vertices[0], joints=posed.joints[0])

"""FLAME's forward pass in torch: batched, differentiable, on any device and float dtype.

The algorithm is `joker_core.lbs.forward`, shared with numpy; this module only puts the
model's arrays on a device and turns keyword tensors into its inputs.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Sequence

import numpy as np
import torch

from joker_core.head_model import HeadModel
from joker_core.lbs import Posed, RigArrays, forward, rig_arrays
from joker_core.rig_params import POSE_FIELDS, RigParams


def torch_rig(model: HeadModel, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> RigArrays:
    """The model's arrays as `dtype` tensors on `device`; outputs of `lbs` follow them."""
    return rig_arrays(model, torch,
                      lambda array: torch.as_tensor(np.ascontiguousarray(array), dtype=dtype, device=device))


def lbs(rig: RigArrays, *, shape: torch.Tensor | None = None, expression: torch.Tensor | None = None,
        global_pose: torch.Tensor | None = None, neck_pose: torch.Tensor | None = None,
        jaw_pose: torch.Tensor | None = None, eye_left_pose: torch.Tensor | None = None,
        eye_right_pose: torch.Tensor | None = None, translation: torch.Tensor | None = None,
        batch_size: int | None = None) -> Posed:
    """Pose B heads: every given tensor is B x n (poses and translation B x 3); a missing
    one is zero. Inputs are cast to the rig's device and dtype; gradients flow through."""
    given = {"shape": shape, "expression": expression, "global_pose": global_pose, "neck_pose": neck_pose,
             "jaw_pose": jaw_pose, "eye_left_pose": eye_left_pose, "eye_right_pose": eye_right_pose,
             "translation": translation}
    template = rig.v_template
    sizes = {name: value.shape[0] for name, value in given.items() if value is not None}
    batch = batch_size if batch_size is not None else next(iter(sizes.values()), 1)
    for name, size in sizes.items():
        if size != batch:
            raise ValueError(f"'{name}' has batch size {size}, expected {batch}")

    def tensor(name: str, width: int) -> torch.Tensor:
        value = given[name]
        if value is None:
            return template.new_zeros((batch, width))
        return value.to(device=template.device, dtype=template.dtype)

    rotations = torch.stack([tensor(name, 3) for name in POSE_FIELDS], dim=1)
    return forward(rig, tensor("shape", 0), tensor("expression", 0), rotations, tensor("translation", 3))


def batch_params(params: Sequence[RigParams], rig: RigArrays) -> dict[str, torch.Tensor]:
    """Keyword tensors for `lbs` from per-head parameters (validated against the rig)."""
    validated = [p.validated(rig) for p in params]
    return {name: torch.as_tensor(np.stack([getattr(p, name) for p in validated]),
                                  dtype=rig.v_template.dtype, device=rig.v_template.device)
            for name in (f.name for f in fields(RigParams))}

"""Named extreme expressions: rig parameters plus a prompt that describes them.

A preset is written once in terms of named facial actions and joint poses. On a model
whose expression components have names (the demo head) the actions become expression
coefficients; on a FLAME file, whose PCA components have no names, only the jaw, neck and
eye poses carry over, and the prompt tells the prior the rest.

Poses are axis-angle radians in the FLAME frame: +x rotation opens the jaw, tips the head
forward and turns the eyes down; +y turns toward the subject's left.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Protocol

import numpy as np

from .errors import JokerError
from .rig_params import RigParams

Vector3 = tuple[float, float, float]


class NamedComponents(Protocol):
    """What a preset needs to know about a model: a HeadModel or a prepared rig."""

    n_shape: int
    n_expr: int
    expression_names: tuple[str, ...]


@dataclass(frozen=True)
class Preset:
    name: str
    prompt: str
    actions: Mapping[str, float] = field(default_factory=dict)  # expression name -> weight
    jaw_pose: Vector3 = (0.0, 0.0, 0.0)
    neck_pose: Vector3 = (0.0, 0.0, 0.0)
    eye_pose: Vector3 = (0.0, 0.0, 0.0)                         # both eyes

    def params_for(self, model: NamedComponents) -> RigParams:
        """Full-length rig parameters for `model`; actions it has no component for are left out."""
        expression = np.zeros(model.n_expr)
        names = tuple(model.expression_names)
        for action, weight in self.actions.items():
            if action in names:
                expression[names.index(action)] = weight
        return RigParams(shape=np.zeros(model.n_shape), expression=expression, jaw_pose=self.jaw_pose,
                         neck_pose=self.neck_pose, eye_left_pose=self.eye_pose, eye_right_pose=self.eye_pose)


def _preset(name: str, prompt: str, actions: dict[str, float] | None = None, **poses: Vector3) -> Preset:
    return Preset(name=name, prompt=prompt, actions=MappingProxyType(dict(actions or {})), **poses)


_PRESETS = (
    _preset("neutral", "a photo of a person with a neutral expression, mouth closed"),
    _preset("scream", "a photo of a person screaming, mouth wide open, eyebrows raised high",
            {"mouth_stretch": 1.0, "brow_raise": 0.9, "upper_lip_raise": 0.6, "lower_lip_down": 0.8,
             "lip_funnel": 0.3, "eyes_wide": 0.8}, jaw_pose=(0.45, 0.0, 0.0), neck_pose=(-0.12, 0.0, 0.0)),
    _preset("big_laugh", "a photo of a person laughing out loud, mouth open, eyes squinting",
            {"smile": 1.3, "upper_lip_raise": 0.4, "blink_left": 0.35, "blink_right": 0.35},
            jaw_pose=(0.3, 0.0, 0.0), neck_pose=(-0.15, 0.0, 0.0)),
    _preset("disgust", "a photo of a disgusted person, wrinkled nose, upper lip raised",
            {"nose_wrinkle": 1.2, "upper_lip_raise": 1.0, "frown": 0.6, "brow_furrow": 0.7},
            jaw_pose=(0.06, 0.0, 0.0), neck_pose=(0.05, 0.0, 0.0)),
    _preset("anger", "a photo of an angry person shouting, furrowed brows, teeth bared",
            {"brow_furrow": 1.3, "upper_lip_raise": 0.7, "mouth_stretch": 0.5, "nose_wrinkle": 0.5, "frown": 0.4,
             "eyes_wide": 0.3},
            jaw_pose=(0.15, 0.0, 0.0), neck_pose=(0.1, 0.0, 0.0)),
    _preset("surprise", "a photo of a surprised person, eyebrows raised, mouth open in an O",
            {"brow_raise": 1.3, "eyes_wide": 1.0, "lip_funnel": 0.6}, jaw_pose=(0.3, 0.0, 0.0), neck_pose=(-0.05, 0.0, 0.0)),
    _preset("tongue_out", "a photo of a person sticking the tongue out, mouth open",
            {"tongue_out": 1.0, "lower_lip_down": 0.6}, jaw_pose=(0.3, 0.0, 0.0)),
    _preset("crooked_smile", "a photo of a person with a crooked half smile on one side of the mouth",
            {"smile_left": 1.2, "smile_right": 0.15}, jaw_pose=(0.03, -0.04, 0.0)),
    _preset("wink", "a photo of a person winking with one eye and smiling",
            {"blink_left": 1.0, "smile_left": 0.6, "smile_right": 0.2}),
    _preset("pout", "a photo of a person pouting, lips pushed forward",
            {"lip_pucker": 1.2, "frown": 0.3, "brow_furrow": 0.3}),
    _preset("puffed_cheeks", "a photo of a person puffing out the cheeks, lips pressed together",
            {"cheek_puff": 1.2, "lip_pucker": 0.4}),
    _preset("sad", "a photo of a sad person, corners of the mouth turned down, looking down",
            {"frown": 1.0, "brow_furrow": 0.5, "brow_raise": 0.3},
            neck_pose=(0.12, 0.0, 0.0), eye_pose=(0.15, 0.0, 0.0)),
    _preset("yawn", "a photo of a person yawning, mouth wide open, eyes half closed",
            {"lip_funnel": 0.4, "blink_left": 0.7, "blink_right": 0.7, "brow_raise": 0.3},
            jaw_pose=(0.5, 0.0, 0.0), neck_pose=(-0.1, 0.0, 0.0)),
)
_BY_NAME = {preset.name: preset for preset in _PRESETS}


def list_presets() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def get_preset(name: str) -> Preset:
    """The preset called `name` (case and '-' versus '_' do not matter)."""
    key = str(name).strip().lower().replace("-", "_")
    if key not in _BY_NAME:
        raise JokerError(f"unknown expression preset '{name}'", f"use one of: {', '.join(_BY_NAME)}")
    return _BY_NAME[key]

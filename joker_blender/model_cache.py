"""The head model behind a rig object, loaded once per source and file version."""

from __future__ import annotations

import os

import bpy

from joker_core.errors import JokerError
from joker_core.head_model import HeadModel

from .rig_build import RIG_TAG

DEMO_SOURCE = "demo"
_cache: dict[tuple[str, float], HeadModel] = {}


def load(source: str) -> HeadModel:
    """"demo" or a model file path -> HeadModel; raises JokerError with the engine's message."""
    if source == DEMO_SOURCE:
        key = (source, 0.0)
        if key not in _cache:
            from joker_core.demo_head import load_demo_head
            _cache[key] = load_demo_head()
        return _cache[key]
    path = bpy.path.abspath(source)
    try:
        key = (path, os.path.getmtime(path))
    except OSError as exc:
        raise JokerError(f"FLAME model file {path} cannot be read ({exc.strerror})",
                         "set the FLAME model path in the Joker preferences, or use the demo head") from exc
    if key not in _cache:
        from joker_core.flame_format import load_head_model
        _cache[key] = load_head_model(path)
    return _cache[key]


def model_for(obj: bpy.types.Object) -> HeadModel | None:
    """The model of a rig object, or None when its file is gone (the panel says so)."""
    try:
        return load(obj.get(RIG_TAG, DEMO_SOURCE))
    except JokerError:
        return None


def clear() -> None:
    _cache.clear()

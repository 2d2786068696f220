"""Keyframes as both action layouts the add-on supports store them."""

from __future__ import annotations

import bpy


def assigned_fcurves(owner: bpy.types.ID) -> list[bpy.types.FCurve]:
    """The F-curves that animate `owner` through its assigned action ([] without one).

    Blender 4.4 made actions layered (F-curves in one channel bag per slot) and 5.0 removed
    the flat `action.fcurves`, which is all that 4.2 LTS has."""
    animation = owner.animation_data
    if animation is None or animation.action is None:
        return []
    from bpy_extras import anim_utils
    if hasattr(anim_utils, "action_get_channelbag_for_slot"):  # layered actions (Blender 4.4+)
        bag = anim_utils.action_get_channelbag_for_slot(animation.action, animation.action_slot)
        return list(bag.fcurves) if bag is not None else []
    return list(animation.action.fcurves)

"""Joker Heads: one photo to a textured 3D head with any expression, in Blender.

Blender talks to the local Joker engine over HTTP; it never runs torch itself. The shared
conventions, rig format and protocol come from the bundled `joker_core` wheel.
"""

import bpy

from . import (correctives, fit_ops, generate_ops, panel_images, panels, preferences, prompt_track, properties,
               reference_ops, rig_ops, sequence_ops, view_ops)

_CLASSES = (rig_ops.CLASSES + reference_ops.CLASSES + fit_ops.CLASSES + view_ops.CLASSES + generate_ops.CLASSES
            + sequence_ops.CLASSES + prompt_track.CLASSES + panels.CLASSES)
_MODULES = (preferences, properties, panel_images, correctives, generate_ops, panels)


def register() -> None:
    for module in _MODULES:
        module.register()
    for cls in _CLASSES:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
    for module in reversed(_MODULES):
        module.unregister()

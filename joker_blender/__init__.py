"""Joker Heads: one photo to a textured 3D head with any expression, in Blender.

Blender talks to the local Joker engine over HTTP; it never runs torch itself. The shared
conventions, rig format and protocol come from the bundled `joker_core` wheel.
"""

from . import preferences

_MODULES = (preferences,)


def register() -> None:
    for module in _MODULES:
        module.register()


def unregister() -> None:
    for module in reversed(_MODULES):
        module.unregister()

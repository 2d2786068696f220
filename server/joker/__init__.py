"""Joker engine: rig, 2D priors, progressive distillation, mesh export, local server.

Importing the package is cheap; heavy modules (torch, diffusers) load where they are used.
"""

from joker_core import __version__

__all__ = ["__version__"]

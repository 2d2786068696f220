"""The Joker 2D diffusion prior on diffusers: reference attention, normal-map ControlNet,
text-only guidance, DDIM; loading of SD1.5 folders, the released checkpoint and our format.

Importing this package imports torch and diffusers; command modules import it inside run().
"""

import os

# Weights come from local paths only; set before diffusers/transformers import the hub client.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from .loading import describe_weights, load_prior  # noqa: E402
from .model import JokerPriorModel  # noqa: E402
from .pipeline import DiffusionPrior  # noqa: E402

__all__ = ["DiffusionPrior", "JokerPriorModel", "describe_weights", "load_prior"]

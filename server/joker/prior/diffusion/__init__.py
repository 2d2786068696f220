"""The Joker 2D diffusion prior on diffusers: reference attention, normal-map ControlNet,
text-only guidance, truncated DDIM and PNDM; loading of SD1.5 folders, the released checkpoint and our format.

Importing this package imports torch and diffusers; command modules import it inside run().

Weights come from local paths only: every from_pretrained here passes local_files_only.
"""

from .loading import describe_weights, load_prior
from .model import JokerPriorModel
from .pipeline import DiffusionPrior

__all__ = ["DiffusionPrior", "JokerPriorModel", "describe_weights", "load_prior"]

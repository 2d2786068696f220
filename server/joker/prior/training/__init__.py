"""Training the Joker diffusion prior: dataset format and validator, a synthetic dataset
from the demo head, the denoising objective and the accelerate training loop."""

"""Keyframed sequences: one head per frame, each frame warm-started from the one before."""

from .engine import FrameResult, SequenceResult, generate_sequence

__all__ = ["FrameResult", "SequenceResult", "generate_sequence"]

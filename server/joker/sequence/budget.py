"""How much distillation a frame needs, from how far the rig moved since the frame before.

A frame that starts from its predecessor's field only has to follow the motion: it skips
the noisiest levels (they would wash out what the field already knows, and flicker), runs
the last few stage-1 levels and a shorter stage 2, and fewer iterations. The share of the
cold budget grows with the rig's largest vertex displacement; a cut (a jump bigger than
COLD_ABOVE_M) gets the whole cold schedule, and a held pose (no motion, same prompt) gets
none: the previous frame's head is this frame's, identical.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..distill.schedule import Preset
from ..prior.base import NoiseLevels

HOLD_BELOW_M = 1e-6            # the rig did not move (float rounding): nothing to distil
REUSE_TARGETS_BELOW_M = 0.001  # the previous frame's prior targets still fit: skip the first refresh
FULL_SHARE_AT_M = 0.01         # displacement that earns the largest warm share
COLD_ABOVE_M = 0.03            # a cut, not a motion: distil as a first frame would
MIN_SHARE, MAX_SHARE = 0.15, 0.35
# Warm rates start as the cold ones and fall to this share of them (a half cosine): large
# steps where the rig moved early on, small ones at the end, so that where nothing moved
# the field comes to rest instead of wandering (bench_sequence.py measured 0.3 and 0.5
# constant, and 0.5 and 1.0 annealed to 5 %). With the 600-step preview, 5 % left the
# mouth's new detail (teeth) unlearnt along the scream's rise, -1.4 dB; 30 %, with the
# field carried along the rig (distill/warm_start.carry_along_rig), keeps within 0.5 dB
# and below independent runs' flicker (docs/sequences.md, "Measured").
WARM_RATE_END = 0.3


@dataclass(frozen=True)
class FrameBudget:
    motion_m: float       # largest vertex displacement since the previous frame (0 for the first)
    share: float          # of the cold budget (1.0: cold, 0.0: held, the previous frame's field as it is)
    reuse_targets: bool
    preset: Preset

    @property
    def warm(self) -> bool:
        return self.share < 1.0

    @property
    def held(self) -> bool:
        return self.share == 0.0


def rig_motion(previous: np.ndarray, current: np.ndarray) -> float:
    """Largest distance any rig vertex moved, in metres."""
    return float(np.linalg.norm(current - previous, axis=1).max())


def cold_budget(preset: Preset) -> FrameBudget:
    return FrameBudget(0.0, 1.0, False, preset)


def frame_budget(cold: Preset, levels: NoiseLevels, motion_m: float, same_prompt: bool = True) -> FrameBudget:
    """The budget of a frame after one whose rig was `motion_m` away; a changed prompt
    needs a (short) run even when the rig held still."""
    if motion_m > COLD_ABOVE_M:
        return dataclasses.replace(cold_budget(cold), motion_m=motion_m)
    if motion_m < HOLD_BELOW_M and same_prompt:
        return FrameBudget(motion_m, 0.0, False, cold)
    share = MIN_SHARE + (MAX_SHARE - MIN_SHARE) * min(1.0, motion_m / FULL_SHARE_AT_M)
    return FrameBudget(motion_m, share, motion_m < REUSE_TARGETS_BELOW_M, warm_preset(cold, levels, share))


def warm_preset(cold: Preset, levels: NoiseLevels, share: float) -> Preset:
    """`cold` cut to about `share` of its prior evaluations and NeRF steps: its last stage-1
    levels, a shorter stage-2 descent, fewer iterations at the final render width, with
    annealed learning rates."""
    schedule = cold.schedule
    switch = schedule.switch_level(levels)
    stage1_levels = len(range(0, switch, schedule.level_stride))
    refreshes = max(1, math.floor(share * stage1_levels))
    iterations = max(refreshes + 1, round(share * schedule.iterations))
    warm = dataclasses.replace(
        schedule, iterations=iterations, refresh_interval=max(1, iterations // (refreshes + 1)),
        first_level=max(0, switch - refreshes * schedule.level_stride),
        k_steps=max(1, math.floor(share * schedule.k_steps)),
        resolutions=((0, schedule.resolutions[-1][1]),))  # the field is already sharp
    return dataclasses.replace(cold, name=f"{cold.name} warm {share:.2f}", schedule=warm, lr_end=WARM_RATE_END)

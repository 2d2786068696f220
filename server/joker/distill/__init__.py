"""Progressive distillation: a radiance field fitted to a 2D prior's targets, refreshed at
decreasing noise (stage 1, one prior step) then by k-step DDIM (stage 2).

Mesh extraction uses `Distillation.field.density / .color` (world points N x 3) inside
`Distillation.field.box`.
"""

from .distiller import Distillation, Progress, distill
from .field import Box, FieldConfig, RadianceField
from .schedule import PRESETS, Preset, Refresh, Schedule, ViewGrid, preset

__all__ = ["Box", "Distillation", "FieldConfig", "PRESETS", "Preset", "Progress", "RadianceField",
           "Refresh", "Schedule", "ViewGrid", "distill", "preset"]

"""The real engine at test size for sequences and batches, and job functions a test
server can run (`--job-function sequence_engine:generate`; its module's generate_sequence
then runs sequence jobs). Figures at real sizes are in benchmarks/bench_sequence.py."""

from __future__ import annotations

import dataclasses

from joker import api
from joker.distill.field import SURFACE_DENSITY, FieldConfig
from joker.distill.rig_views import RigSupervision
from joker.distill.schedule import ViewGrid, preset
from joker.mesh.pipeline import MeshSettings
from joker.sequence import generate_sequence as engine_sequence

_PREVIEW = preset("preview")
TINY_SEQUENCE = api.Tuning(
    preset=dataclasses.replace(
        _PREVIEW, name="sequence test",
        schedule=dataclasses.replace(_PREVIEW.schedule, iterations=40, refresh_interval=8, level_stride=15,
                                     k_steps=3, resolutions=((0, 32),), patches=2, patch_size=16),
        views=ViewGrid(3, 2, size=32), field=FieldConfig(resolutions=(16, 32), channels=4, hidden=16),
        samples_per_ray=16, rig=RigSupervision(rays=0)),  # warm starts are the point here, not rig geometry
    mesh=MeshSettings(resolution=32, texture_size=64, face_budget=1500, coarse_stride=2, iso_level=SURFACE_DENSITY))


def generate(reference, **kwargs):
    return api.generate(reference, tuning=TINY_SEQUENCE, **kwargs)


def generate_sequence(reference, **kwargs):
    return engine_sequence(reference, tuning=TINY_SEQUENCE, **kwargs)

"""The real engine at test size: tunings for joker.api.generate, and a job function the
server can run (`joker serve --job-function tiny_engine:generate`) so whole jobs finish in
seconds on CI's CPU. Like the full engine, it writes a preview at every target refresh
(5 per TINY job), which the server publishes under live/. Quality presets are measured in
benchmarks/, not here."""

from __future__ import annotations

import dataclasses

from joker import api
from joker.distill.field import SURFACE_DENSITY, FieldConfig
from joker.distill.losses import LossWeights
from joker.distill.schedule import Preset, Schedule, ViewGrid
from joker.mesh.pipeline import MeshSettings
from joker.sequence import generate_sequence as engine_sequence
from joker_core.errors import JokerError

TINY = api.Tuning(
    preset=Preset("test", Schedule(iterations=60, refresh_interval=12, level_stride=15, k_steps=2,
                                   resolutions=((0, 32),), patches=2, patch_size=16),
                  ViewGrid(3, 2, size=32), field=FieldConfig(resolutions=(16, 32), channels=4, hidden=16),
                  samples_per_ray=16, losses=LossWeights(l1=1.0, ssim=0.2, sparsity=1e-4, mask=0.01),
                  lr_network=1e-2),
    mesh=MeshSettings(resolution=48, texture_size=64, face_budget=2000, coarse_stride=2, iso_level=SURFACE_DENSITY))

# Long enough, with a strong silhouette term, for a head-sized mesh in ~20 s of CPU.
SMALL = api.Tuning(
    preset=dataclasses.replace(TINY.preset, schedule=dataclasses.replace(TINY.preset.schedule, iterations=150,
                                                                         refresh_interval=30),
                               losses=LossWeights(l1=1.0, ssim=0.2, sparsity=1e-4, mask=0.3)),
    mesh=TINY.mesh)


def generate(reference, **kwargs):
    """joker.api.generate with the TINY tuning: the job function of server tests."""
    return api.generate(reference, tuning=TINY, **kwargs)


def generate_or_fail(reference, *, spec, progress=None, **kwargs):
    """`generate`; the prompt word fail_at=STAGE ends the job with a JokerError when the
    engine reports STAGE (fail_at=mesh: once distillation is over, its previews published),
    for tests of what a job that fails midway leaves."""
    fail_at = dict(word.split("=", 1) for word in spec.prompt.split() if "=" in word).get("fail_at")

    def report(event):
        if event.stage == fail_at:
            raise JokerError(f"the test engine was told to fail at its {fail_at} stage",
                             "leave fail_at out of the prompt")
        if progress is not None:
            progress(event)
    return generate(reference, spec=spec, progress=report, **kwargs)


def generate_head_sized(reference, **kwargs):
    """joker.api.generate with the SMALL tuning, for tests that check the head's shape."""
    return api.generate(reference, tuning=SMALL, **kwargs)


def generate_sequence(reference, **kwargs):
    """The engine's sequences with the SMALL tuning: what a server running this module's
    job functions does with sequence jobs (its worker looks for this name)."""
    return engine_sequence(reference, tuning=SMALL, **kwargs)

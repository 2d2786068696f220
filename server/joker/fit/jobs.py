"""The fit as a job uses it: once per job, saved in the job's inputs, skipped where the user
aligned the photo explicitly."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from joker_core.errors import JokerError
from joker_core.files import atomic_write_bytes
from joker_core.head_model import HeadModel
from joker_core.protocol import JobSpec
from joker_core.rig_params import RigParams

from .solve import FitSettings, ReferenceFit, cached_embedding, fit_photo, with_identity

log = logging.getLogger(__name__)

FIT_FILE = "reference_fit.json"


def write_fit(folder: Path, fit: ReferenceFit | None) -> None:
    """Keep the fit with the job's inputs (`folder`/inputs/reference_fit.json)."""
    if fit is not None:
        atomic_write_bytes(Path(folder) / "inputs" / FIT_FILE, json.dumps(fit.to_dict()).encode())


def job_fit(spec: JobSpec, photo: np.ndarray, model: HeadModel) -> ReferenceFit | None:
    """The reference photo's fit (the caller keeps it with write_fit). None
    where the job aligns the photo explicitly (its camera or eyes win), where the model
    has no landmark embedding (said, and the eye-based alignment is used), or where no
    face is found for a prior that does not need one (the diffusion prior: said)."""
    alignment = spec.alignment or {}
    if alignment.get("camera") is not None or alignment.get("eyes") is not None:
        return None
    if cached_embedding(model, None) is None:
        log.warning("head model '%s' has no landmark embedding: the photo is aligned by its eyes and the rig "
                    "keeps its own identity (fit it with `joker fit --embedding`)", model.name)
        return None
    try:
        fit = fit_photo(photo, model, FitSettings(fov_deg=float(alignment.get("fov_deg", 25.0))))
    except JokerError as error:
        if spec.prior.name == "projection":
            raise
        log.warning("the reference photo could not be fitted (%s); the rig keeps its own identity", error)
        return None
    log.info("reference fit: landmark residual %.2f px, confidence %.2f", fit.residual_px, fit.confidence)
    return fit


def job_params(spec: JobSpec, params: RigParams, fit: ReferenceFit | None) -> RigParams:
    """The job's rig wearing the fitted identity, unless the job set the shape itself."""
    if fit is None or (spec.rig is not None and spec.rig.shape.size > 0):
        return params
    return with_identity(params, fit)

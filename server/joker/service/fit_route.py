"""POST /v1/fit: the rig fitted to a photo's face (joker.fit): identity shape, the photo's
own expression and jaw, head pose and camera, in the answer itself (a second or two on a
CPU; no job is made and nothing is kept). The add-on's *Fit Rig to Reference* calls it, so
Blender needs neither torch nor dlib."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from joker_core.head_model import load_model

from .config import ServiceConfig
from .errors import Unprocessable
from .schemas import errors, json_response
from .security import PHOTO_FORMATS, check_image

FIT_SCHEMA = {
    "type": "object",
    "required": ["reference"],
    "additionalProperties": False,
    "properties": {
        "reference": {"type": "string", "format": "byte", "description": "the photo: base64 PNG, JPEG or WebP"},
        "model": {"type": "string", "description": "head model file on the server's machine (FLAME .pkl or "
                                                   "Joker .npz); default: the built-in demo head"},
        "settings": {"type": "object", "description": "landmarks ('68' or '5'), fov_deg (the focal prior), "
                                                      "embedding_path (a FLAME model's landmark embedding file)"},
    },
}
FIT_FIELDS = tuple(FIT_SCHEMA["properties"])
FIT_ANSWER = {"type": "object", "required": ["model", "fit"], "additionalProperties": False,
              "properties": {"model": {"type": "string", "description": "the head model's name"},
                             "fit": {"type": "object", "description": "ReferenceFit.to_dict(): rig parameters, "
                                                                      "camera, landmark residual and confidence"}}}
if TYPE_CHECKING:
    from joker.fit.solve import FitSettings

PARALLEL_FITS = 1  # dlib and torch share the CPU with running jobs: fits queue, one at a time


def add_fit_route(routes: APIRouter, config: ServiceConfig) -> None:
    """POST /fit on the app's token-guarded /v1 router (on it, not nested: the 405 handler
    reads that router's own routes)."""
    # The app's body reader and JSON parser, imported here: app.py imports this module.
    from .app import _read_limited

    fitting = asyncio.Semaphore(PARALLEL_FITS)

    @routes.post("/fit", summary="Fit the head rig to a photo's face: shape, expression, jaw, pose, camera",
                 responses={200: json_response("the fitted rig", FIT_ANSWER), **errors(413, 415, 422)},
                 openapi_extra={"requestBody": {"required": True, "content": {
                     "application/json": {"schema": FIT_SCHEMA}}}})
    async def fit(request: Request) -> dict[str, Any]:
        body = await _read_limited(request, config.max_upload_bytes)
        photo, model_path, settings = await run_in_threadpool(_parse_fit, body, config)
        async with fitting:
            return await run_in_threadpool(_fit, photo, model_path, settings)


# The engine (torch, dlib) is imported on the first fit, not with the server.

def _parse_fit(body: bytearray, config: ServiceConfig) -> tuple[np.ndarray, str | None, FitSettings]:
    from joker.fit.solve import FitSettings
    from joker.prior.projection.photo import load_photo

    from .app import decode_base64, load_json_object

    data = load_json_object(body, FIT_FIELDS, "{\"reference\": \"<base64 photo>\"}")
    model = data.get("model")
    if model is not None and (not isinstance(model, str) or not model or len(model) > 4096):
        raise Unprocessable("model", "is not a file path", "send the head model's path on the server, or leave it out")
    settings = data.get("settings", {})
    if not isinstance(settings, dict):
        raise Unprocessable("settings", "is not an object", "send {\"landmarks\": \"68\", \"fov_deg\": 25}")
    settings = FitSettings.from_dict(settings)
    reference = decode_base64(data.pop("reference", None), "reference")
    check_image(reference, "reference", PHOTO_FORMATS, config.max_image_pixels)  # format and size, before decoding
    return load_photo(reference), model, settings  # upright (EXIF), 8-bit RGB


def _fit(photo: np.ndarray, model_path: str | None, settings: FitSettings) -> dict[str, Any]:
    from joker.fit.solve import fit_photo

    model = load_model(model_path)
    return {"model": model.name, "fit": fit_photo(photo, model, settings).to_dict()}

"""JSON Schemas of what the HTTP API takes and answers, for its OpenAPI document: clients
and fuzzers build valid jobs from them. The protocol's parsers (joker_core.protocol) stay
the judge; each schema is as strict as its parser or stricter, so whatever it describes
is accepted (tests/service/test_openapi.py draws specs from it and parses them)."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from joker_core.flame_format import FLAME_SHAPE_COMPONENTS
from joker_core.presets import list_presets
from joker_core.protocol import (ALIGNMENT_RANGES, FLAME_EXPRESSION_COMPONENTS, MAX_FRAMES, MAX_PROMPT_CHARS, MAX_VIEWS,
                                 MATERIALS, PRIORS, QUALITIES, JobState, JobStatus)
from joker_core.rig_params import LIMITS, POSE_LIMIT, RigParams

Schema = dict[str, Any]


def _number(low: float, high: float) -> Schema:
    return {"type": "number", "minimum": low, "maximum": high}


def _integer(low: int, high: int) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


def _text(max_chars: int) -> Schema:
    return {"type": "string", "maxLength": max_chars, "pattern": "^[^\\x00]*$"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [{"type": "null"}, schema]}


def _object(properties: dict[str, Schema], required: tuple[str, ...] = (), **extra: Any) -> Schema:
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False,
            **extra}


def _vector(limit: float, min_items: int, max_items: int) -> Schema:
    return {"type": "array", "items": _number(-limit, limit), "minItems": min_items, "maxItems": max_items}


_LENGTHS = {"shape": FLAME_SHAPE_COMPONENTS, "expression": FLAME_EXPRESSION_COMPONENTS}
RIG = _object({f.name: _vector(LIMITS.get(f.name, POSE_LIMIT), 0 if f.name in _LENGTHS else 3, _LENGTHS.get(f.name, 3))
               for f in fields(RigParams)},
              description="FLAME parameters; a missing vector is zeros (neutral). Poses: axis-angle radians")
PRESET = {"type": "string", "enum": list(list_presets())}
_PATH = _nullable(_text(4096))
CAMERA = _object({"c2w": {"type": "array", "minItems": 4, "maxItems": 4,
                          "items": {"type": "array", "minItems": 4, "maxItems": 4, "items": _number(-1e6, 1e6)}},
                  "fx": {**_number(0, 1e6), "exclusiveMinimum": 0}, "fy": {**_number(0, 1e6), "exclusiveMinimum": 0},
                  "cx": _number(-1e6, 1e6), "cy": _number(-1e6, 1e6),
                  "width": _integer(1, 8192), "height": _integer(1, 8192)},
                 ("c2w", "fx", "fy", "cx", "cy", "width", "height"),
                 description="camera-to-world (OpenGL axes), focal lengths and principal point in pixels")
BLENDER_VIEWS = {"type": "array", "maxItems": MAX_VIEWS, "items": _object(
    {"camera": CAMERA, "normal_map": {"type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,123}\\.png$",
                                      "description": "the uploaded PNG's name in normal_maps (a plain file name)"}},
    ("camera", "normal_map"))}
VIEWS = {**_object({"grid": _nullable({"type": "array", "items": _integer(1, 64), "minItems": 2, "maxItems": 2}),
                    "count": _nullable(_integer(1, MAX_VIEWS)),
                    "azimuth_range": _number(0.0, 180.0), "elevation_range": _number(0.0, 89.0),
                    "size": _nullable(_integer(16, 2048))},
                   description="the distillation's views: a grid, or count random ones; null: the quality decides"),
         "not": {"required": ["grid", "count"]}}
PRIOR = {**_object({"name": {"enum": list(PRIORS)}, "weights": _PATH, "sd15": _PATH, "vae": _PATH}),
         "if": {"required": ["name"], "properties": {"name": {"const": "joker"}}},
         "then": {"required": ["weights"], "properties": {"weights": {"type": "string", "minLength": 1}}}}
ALIGNMENT = _nullable(_object({
    "camera": _nullable(CAMERA),
    "eyes": _nullable({"type": "array", "minItems": 2, "maxItems": 2,
                       "items": {"type": "array", "minItems": 2, "maxItems": 2, "items": _number(-1e5, 1e5)}}),
    **{key: _nullable(_number(low, high)) for key, (low, high) in ALIGNMENT_RANGES.items()}}))



def spec_schema(device: str) -> Schema:
    """A job's spec as this server takes it: one head (JobSpec) or a sequence (SequenceSpec).
    Beyond the schema, the server bounds views x pixels (--max-view-megapixels)."""
    shared = {"prompt": _text(MAX_PROMPT_CHARS), "negative_prompt": _text(MAX_PROMPT_CHARS), "views": VIEWS,
              "quality": {"enum": list(QUALITIES)}, "prior": PRIOR, "seed": _integer(0, 2**32 - 1),
              "device": {"enum": sorted({"auto", device}), "description": "auto, or the device this server owns"},
              "model": _PATH, "alignment": ALIGNMENT, "lpips_weights": _PATH,
              "rig_topology": {"type": "boolean", "description": "also the rig's topology on the surface (head_rig.glb)"},
              "material": {"enum": list(MATERIALS), "description": "the GLB's: lit base colour or unlit"}}
    expression = {"preset": PRESET, "rig": RIG}
    one_of_preset_and_rig = {"not": {"required": ["preset", "rig"]}}
    job = {**_object({**expression, **shared, "blender_views": BLENDER_VIEWS}, title="JobSpec",
                     description="one head; a preset or a rig, not both"), **one_of_preset_and_rig}
    frame = {**_object({**expression, "prompt": _nullable(_text(MAX_PROMPT_CHARS)), "blender_views": BLENDER_VIEWS}),
             **one_of_preset_and_rig}
    sequence = _object({"job": _object(shared, description="settings every frame shares"),
                        "frames": {"type": "array", "items": frame, "minItems": 1, "maxItems": MAX_FRAMES},
                        "frame_start": _integer(-1_000_000, 1_000_000), "frame_step": _integer(1, 10_000),
                        "per_frame_textures": {"type": "boolean", "default": False,
                                               "description": "sequence.glb also carries each frame's texture"}},
                       ("frames",), title="SequenceSpec", description="a keyframed sequence: one head per frame")
    return {"anyOf": [job, sequence]}


PRIORITY = {"type": "integer", "minimum": -100, "maximum": 100, "default": 0, "description": "higher runs first"}
KEEP = {"type": "boolean", "default": False, "description": "never delete by retention"}
_BASE64 = {"type": "string", "format": "byte"}


def submit_schema(device: str) -> Schema:
    """POST /v1/jobs's JSON body."""
    return _object({"spec": spec_schema(device),
                    "reference": {**_BASE64, "description": "the photo: base64 PNG, JPEG or WebP"},
                    "normal_maps": {"type": "object", "additionalProperties": _BASE64,
                                    "description": "name -> base64 PNG, one per blender_views[].normal_map"},
                    "priority": PRIORITY, "keep": KEEP}, ("spec", "reference"))


SUBMIT_FIELDS = tuple(submit_schema("cpu")["properties"])

# -- answers ----------------------------------------------------------------------------

_TYPES = {"str": "string", "float": "number", "int": "integer", "bool": "boolean"}


def _status_schema() -> Schema:
    """JobStatus's fields, from the dataclass the server serialises."""
    properties: dict[str, Schema] = {}
    for f in fields(JobStatus):
        kind = str(f.type)
        if f.name == "state":
            properties[f.name] = {"enum": [state.value for state in JobState]}
        elif f.name == "artifacts":
            properties[f.name] = {"type": "array", "items": {"type": "string"}}
        else:
            base = _TYPES[kind.split(" | ")[0]]
            properties[f.name] = {"type": [base, "null"] if "None" in kind else base}
    return {"type": "object", "properties": properties, "required": list(properties), "title": "JobStatus"}


JOB_STATUS = _status_schema()
JOB_LIST = {"type": "object", "required": ["jobs"], "properties": {"jobs": {"type": "array", "items": JOB_STATUS}}}
ARTIFACTS = {"type": "object", "required": ["artifacts"], "properties": {"artifacts": {"type": "array", "items": {
    "type": "object", "required": ["name", "size"],
    "properties": {"name": {"type": "string"}, "size": {"type": "integer", "minimum": 0}}}}}}
FILE = {"description": "the file", "content": {"application/octet-stream": {"schema": {"type": "string",
                                                                                  "format": "binary"}}}}
EVENTS = {"description": "server-sent events until the job ends: status, progress, preview",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}}
HEALTH = {"type": "object", "required": ["status", "version"], "properties": {
    "status": {"enum": ["ok", "unavailable"]}, "version": {"type": "string"}, "problem": {"type": "string"},
    "executor": {"type": "string"}, "slots": {"type": "integer"}}}
INFO = {"type": "object", "required": ["version", "protocol", "device", "queue_length", "priors"], "properties": {
    "version": {"type": "string"}, "protocol": {"type": "integer"}, "device": {"type": "string"},
    "queue_length": {"type": "integer"}, "priors": {"type": "array", "items": {
        "type": "object", "required": ["name", "ready"],
        "properties": {"name": {"type": "string"}, "ready": {"type": "boolean"}}}}}}
ERROR = {"type": "object", "required": ["error"], "title": "Error", "properties": {"error": {
    "type": "object", "required": ["field", "problem", "fix", "message"],
    "properties": {"field": {"type": ["string", "null"]}, "problem": {"type": "string"},
                   "fix": {"type": ["string", "null"]}, "message": {"type": "string"}}}}}

_ERRORS = {401: "no or a wrong access token", 403: "the Host header names another server",
           404: "no such job or artifact", 409: "the job is in a state that does not allow it",
           413: "the body or an image is too large", 415: "an image is not in an accepted format",
           422: "a field is wrong (the error names it and the fix)",
           503: "the job database cannot be used now", 507: "the disk is full"}


def json_response(description: str, schema: Schema) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict[int, dict[str, Any]]:
    """OpenAPI `responses` entries for these error codes, each with the error body."""
    return {code: json_response(_ERRORS[code], ERROR) for code in codes}

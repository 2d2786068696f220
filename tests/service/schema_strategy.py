"""Hypothesis values drawn from a JSON Schema (the subset the server's OpenAPI document
uses), kept only when the schema validates them: how a client that reads nothing but the
published document would build requests. (hypothesis-jsonschema does not run on this
Hypothesis release.)"""

from __future__ import annotations

import re
from typing import Any

import jsonschema
from hypothesis import strategies as st

TEXT_CHARS = 24  # strings stay short: the bounds under test are counts and ranges


def from_schema(schema: dict[str, Any]) -> st.SearchStrategy:
    valid = jsonschema.Draft202012Validator(schema)
    return _values(schema).filter(valid.is_valid)


def _values(schema: dict[str, Any]) -> st.SearchStrategy:
    if "anyOf" in schema:
        return st.one_of([_values(option) for option in schema["anyOf"]])
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "const" in schema:
        return st.just(schema["const"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return st.one_of([_values({**schema, "type": one}) for one in kind])
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        return st.floats(schema.get("minimum"), schema.get("maximum"), allow_nan=False, allow_infinity=False,
                         exclude_min="exclusiveMinimum" in schema)
    if kind == "string":
        limit = min(schema.get("maxLength", TEXT_CHARS), TEXT_CHARS)
        if "pattern" in schema:
            return st.from_regex(re.compile(schema["pattern"]), fullmatch=True).filter(lambda text: len(text) <= limit)
        return st.text(max_size=limit)
    if kind == "array":
        low = schema.get("minItems", 0)
        return st.lists(_values(schema.get("items", {})), min_size=low, max_size=min(schema.get("maxItems", low + 3), low + 3))
    if kind == "object":
        properties = schema.get("properties", {})
        required = set(schema.get("required", ()))
        values = st.fixed_dictionaries({name: _values(properties[name]) for name in required},
                                       optional={name: _values(value) for name, value in properties.items()
                                                 if name not in required})
        exclusive = schema.get("not", {}).get("required")  # "not all of these": drop one, not the draw
        return values if exclusive is None else values.map(lambda value: _without_one(value, exclusive))
    raise ValueError(f"schema keyword set not drawn here: {sorted(schema)}")


def _without_one(value: dict, names: list[str]) -> dict:
    if all(name in value for name in names):
        del value[names[-1]]
    return value

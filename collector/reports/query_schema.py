"""The JSON Schema of a Stats API v2 query body (``query_schema.json``) and the check of a
body against it.

The schema is the public request shape: Plausible's documented fields and the
collector's extensions, each marked as one. A body it refuses is an ``InvalidField``
naming the exact field (``filters[0][1]``) with a reason in words; names it lets
through are checked again by ``collector.reports.request`` against the allow-lists
the code implements. The schema avoids ``oneOf`` (``if``/``then`` instead), so that
the first error found is the specific one, not "valid under none of the choices".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from importlib.resources import files
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from collector.errors import InvalidField

QUERY_SCHEMA: dict[str, Any] = json.loads(
    files("collector.reports").joinpath("query_schema.json").read_text(encoding="utf-8"))
_VALIDATOR = Draft202012Validator(QUERY_SCHEMA)
# Enums this long are named, not listed, in a message.
_LISTED_AT_MOST = 16
_TYPE_WORDS = {"object": "an object", "array": "a list", "string": "a string",
               "boolean": "true or false", "integer": "a whole number", "number": "a number"}


def check_query_body(body: Any) -> None:
    """Raise InvalidField for the first part of ``body`` the schema refuses."""
    error = next(iter(_VALIDATOR.iter_errors(body)), None)
    if error is None:
        return
    path = list(error.absolute_path)
    if error.validator in ("required", "additionalProperties"):
        path.append(_named_key(error))
    raise InvalidField(_reason(error), field_name(path))


def field_name(path: Iterable[str | int]) -> str:
    """``["filters", 0, 1]`` as ``filters[0][1]``, ``["include", "sample"]`` as
    ``include.sample``; the empty path is the body."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else part
    return text or "body"


def _named_key(error: ValidationError) -> str:
    """The missing property of a ``required`` error, the unknown one of an
    ``additionalProperties`` error."""
    instance, schema = error.instance, error.schema
    if error.validator == "required":
        return str(next(name for name in schema["required"] if name not in instance))
    return sorted(str(key) for key in instance if key not in schema["properties"])[0]


def _reason(error: ValidationError) -> str:
    schema, keyword, value = error.schema, error.validator, error.validator_value
    description = schema.get("description")
    context = f": {description}" if description else ""
    if keyword == "required":
        wanted = _described(schema["properties"][_named_key(error)])
        return f"required: {wanted}" if wanted else "required"
    if keyword == "additionalProperties":
        return f"unknown field (accepted: {', '.join(schema['properties'])})"
    if keyword == "enum" and "title" in schema:
        known = f" (known: {', '.join(map(str, value))})" if len(value) <= _LISTED_AT_MOST else ""
        return f"unknown {schema['title']} {error.instance!r}{known}"
    if keyword == "enum":
        return "must be one of " + ", ".join(json.dumps(item) for item in value)
    if keyword == "type":
        return f"must be {_TYPE_WORDS.get(str(value), str(value))}{context}"
    if keyword in ("pattern", "anyOf", "not", "minLength", "maxLength") and description:
        return f"must be {description}"
    if keyword == "minItems":
        return (f"must not be empty{context}" if value == 1
                else f"has fewer than {value} items{context}")
    if keyword == "maxItems":
        return f"has more than {value} items{context}"
    if keyword == "uniqueItems":
        return "lists an item twice"
    if keyword in ("minimum", "maximum"):
        return f"must be {'at least' if keyword == 'minimum' else 'at most'} {value}"
    return str(error.message)


def _described(schema: dict[str, Any]) -> str | None:
    if "$ref" in schema:
        schema = QUERY_SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]]
    description = schema.get("description")
    return str(description) if description else None

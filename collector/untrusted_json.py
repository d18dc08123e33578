"""JSON from the internet: decoded by msgspec, with a cap on how deeply it may nest.

A body of ten thousand ``{"a":`` makes any recursive decoder give up with a
``RecursionError`` (a 500), and a structure just under the interpreter's limit
breaks whatever walks it later (error messages, the filter tree). So no decoded
value nests deeper than ``MAX_JSON_DEPTH``: a 400 naming the field instead.

The hot path pays two ``bytes.count`` scans (about 0.1 µs for an event body): a
value can nest no deeper than it has opening brackets, so only a body with more
than ``MAX_JSON_DEPTH`` of them is measured, and only after decoding it.
"""

from __future__ import annotations

from typing import Any

import msgspec

from collector.errors import InvalidField

# An event is 2 levels deep, a query with filters nested ten times about 25.
MAX_JSON_DEPTH = 32

_decoder = msgspec.json.Decoder()


def decode_json(raw: bytes | str, field: str) -> Any:
    """The value ``raw`` encodes, or InvalidField naming ``field`` (invalid or too deep)."""
    try:
        value = _decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise InvalidField(f"not valid JSON ({exc})", field) from None
    except RecursionError:
        raise _too_deep(field) from None
    if _bracket_count(raw) > MAX_JSON_DEPTH and _nests_deeper(value, MAX_JSON_DEPTH):
        raise _too_deep(field)
    return value


def _bracket_count(raw: bytes | str) -> int:
    if isinstance(raw, bytes):
        return raw.count(b"{") + raw.count(b"[")
    return raw.count("{") + raw.count("[")


def _nests_deeper(value: Any, limit: int) -> bool:
    """Whether objects and arrays in ``value`` nest more than ``limit`` levels (no recursion)."""
    pending = [(value, 1)] if isinstance(value, (dict, list)) else []
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        pending.extend((child, depth + 1) for child in children
                       if isinstance(child, (dict, list)))
    return False


def _too_deep(field: str) -> InvalidField:
    return InvalidField(f"nested deeper than {MAX_JSON_DEPTH} levels", field)

"""Stats API v1 filters, as Plausible's v1 clients write them, turned into v2 filters.

The ``filters`` parameter is an expression such as
``visit:browser==Firefox;event:page==/blog/**``: ``;`` joins conditions (all must
hold), ``==`` and ``!=`` compare, ``|`` separates alternatives (``\\|`` is a literal
bar), and ``*`` matches any run of characters. Plausible reads two JSON forms in the
same parameter, and so does this module: an object in its dashboard's shape
(``{"page": "~blog", "source": "!Google"}``: ``!`` negates, ``~`` means "contains")
and a list of v2 filters. The result is a list of v2 filters for ``parse_query``,
which checks dimensions and values as for any v2 query; a part that cannot be read
is a 400 here, where Plausible would drop it and answer unfiltered numbers.
"""

from __future__ import annotations

import re
from typing import Any

from collector.errors import InvalidField
from collector.reports.dimensions import PROPS_PREFIX
from collector.untrusted_json import decode_json

# A bar not preceded by a backslash separates alternatives.
_ALTERNATIVE = re.compile(r"(?<!\\)\|")
_COMPARISON = re.compile(r"==|!=")
_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")
# Plausible labels an event without the property "(none)"; stored, it is empty.
NO_VALUE = "(none)"
# The dashboard-shaped object's keys: event properties, then visit properties.
_EVENT_KEYS = ("name", "page", "goal", "hostname")
_VISIT_KEYS = ("source", "channel", "referrer", "utm_medium", "utm_source", "utm_campaign",
               "utm_content", "utm_term", "screen", "device", "browser", "browser_version",
               "os", "os_version", "country", "region", "city", "entry_page", "exit_page",
               "language", "isp")
_WILDCARD_KEYS = ("page", "goal", "hostname")


def v2_filters(raw: str | None) -> list[Any]:
    """The v2 filters the ``filters`` parameter describes (none when it is absent)."""
    text = (raw or "").strip()
    if not text:
        return []
    if text[0] in "[{":
        decoded = decode_json(text, "filters")
        if isinstance(decoded, list):
            return decoded
        if isinstance(decoded, dict):
            return _dashboard_filters(decoded)
    return [_expression_filter(part) for part in text.split(";") if part.strip()]


def filtered_dimensions(filters: list[Any]) -> set[str]:
    """Every dimension a condition of ``filters`` (at any depth) tests."""
    found: set[str] = set()
    pending = list(filters)
    while pending:
        item = pending.pop()
        if not isinstance(item, list) or len(item) < 2 or not isinstance(item[0], str):
            continue  # malformed: parse_query says where
        if item[0] in ("and", "or") and isinstance(item[1], list):
            pending.extend(item[1])
        elif item[0] == "not":
            pending.append(item[1])
        elif isinstance(item[1], str):
            found.add(item[1])
    return found


def renamed(filters: list[Any], old: str, new: str) -> list[Any]:
    """``filters`` with every condition on dimension ``old`` testing ``new`` instead."""
    def rename(item: Any) -> Any:
        if not isinstance(item, list) or len(item) < 2 or not isinstance(item[0], str):
            return item
        if item[0] in ("and", "or") and isinstance(item[1], list):
            return [item[0], [rename(child) for child in item[1]]]
        if item[0] == "not":
            return ["not", rename(item[1])]
        return [item[0], new, *item[2:]] if item[1] == old else item
    return [rename(item) for item in filters]


def wildcard_pattern(value: str) -> str:
    """An RE2 pattern matching ``value`` whole, each run of ``*`` standing for any text."""
    literal = "".join("\\" + char if char in _REGEX_SPECIAL else char
                      for char in value.replace("*", "\0"))
    return "^" + re.sub("\0+", ".*", literal) + "$"


def _expression_filter(text: str) -> list[Any]:
    parts = [part.strip() for part in _COMPARISON.split(text.strip()) if part.strip()]
    if len(parts) != 2:
        raise InvalidField(f"cannot read the filter {text.strip()!r}: a filter is "
                           "property==value or property!=value", "filters")
    key, value = parts
    negated = "!=" in text
    values = _alternatives(value)
    if "*" in value and key != "event:goal":  # goal names are taken literally
        return ["matches_not" if negated else "matches", key,
                [wildcard_pattern(item) for item in values]]
    return _equality(key, values, negated)


def _dashboard_filters(mapping: dict[str, Any]) -> list[Any]:
    found = []
    for key, value in mapping.items():
        if key == "props" and isinstance(value, dict):
            found += [_dashboard_filter(PROPS_PREFIX + name, name, prop)
                      for name, prop in value.items()]
        elif key in _EVENT_KEYS or key in _VISIT_KEYS:
            level = "event" if key in _EVENT_KEYS else "visit"
            found.append(_dashboard_filter(f"{level}:{key}", key, value))
        else:
            raise InvalidField(f"unknown filter key {key!r}", "filters")
    return found


def _dashboard_filter(dimension: str, key: str, value: Any) -> list[Any]:
    if not isinstance(value, str):
        raise InvalidField(f"the filter on {key!r} must be a string", "filters")
    negated, value = value.startswith("!"), value.removeprefix("!")
    contains, value = value.startswith("~"), value.removeprefix("~")
    values = _alternatives(value)
    if contains:
        return ["contains_not" if negated else "contains", dimension, values]
    if key in _WILDCARD_KEYS and "*" in value:
        return ["matches_not" if negated else "matches", dimension,
                [wildcard_pattern(item) for item in values]]
    return _equality(dimension, values, negated)


def _equality(dimension: str, values: list[str], negated: bool) -> list[Any]:
    if dimension == "visit:country":
        for code in values:
            if len(code) != 2:
                raise InvalidField(f"{code!r} is not a country code (two letters, ISO 3166-1)",
                                   "filters")
    if dimension.startswith(PROPS_PREFIX) and NO_VALUE in values:
        # The engine may read a missing property as its label or as the empty value it
        # is stored as: name both, so the filter means the same either way.
        values = [*values, ""]
    return ["is_not" if negated else "is", dimension, values]


def _alternatives(value: str) -> list[str]:
    return [item.replace("\\|", "|") for item in _ALTERNATIVE.split(value)]

"""Parse and validate a Stats API v2 query body into a typed ``QuerySpec``.

Every error names the exact field (``filters[0][1]``, ``metrics[2]``) and the
reason, so a client can fix its request without guessing. Only names from the
allow-lists in ``dimensions`` and ``metrics`` get through; values stay values
and are bound as parameters later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.errors import InvalidField
from collector.reports.dimensions import is_known_dimension
from collector.reports.metrics import METRICS

FILTER_OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
LOGICAL_OPERATORS = ("and", "or", "not")
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 10_000
MAX_OFFSET = 2**32 - 1  # bound as UInt32
# and/or/not nested this deep at most: the filter tree is walked recursively.
MAX_FILTER_DEPTH = 10
# ClickHouse's multiSearchAny takes at most 255 needles; one cap for every operator.
MAX_FILTER_VALUES = 100


@dataclass(frozen=True)
class Condition:
    """A leaf filter: ``dimension`` ``operator`` any of ``values``."""

    operator: str
    dimension: str
    values: tuple[str, ...]
    path: str  # where it came from in the request, for error messages


@dataclass(frozen=True)
class Logical:
    operator: str  # and | or | not
    children: tuple[Filter, ...]


Filter = Condition | Logical


@dataclass(frozen=True)
class QuerySpec:
    site_id: str
    date_range: str | tuple[str, str]
    metrics: tuple[str, ...]
    dimensions: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    order_by: tuple[tuple[str, str], ...] = ()
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    comparison: bool = False
    time_labels: bool = False
    # Every metric may come from the visitor sample on large ranges (the dashboard's
    # choice: fast answers under filters), not only the distinct counts.
    sample: bool = False


def parse_query(body: Any) -> QuerySpec:
    if not isinstance(body, dict):
        raise InvalidField("the body must be a JSON object", "body")
    known = {"site_id", "date_range", "metrics", "dimensions", "filters", "order_by",
             "pagination", "include"}
    for key in body:
        if key not in known:
            raise InvalidField(f"unknown field (accepted: {', '.join(sorted(known))})", key)
    metrics = _metrics(body.get("metrics"))
    dimensions = _dimensions(body.get("dimensions", []))
    limit, offset = _pagination(body.get("pagination", {}))
    comparison, time_labels, sample = _include(body.get("include", {}))
    return QuerySpec(
        site_id=parse_site_id(body.get("site_id")),
        date_range=parse_date_range(body.get("date_range")),
        metrics=metrics,
        dimensions=dimensions,
        filters=tuple(_filter(item, f"filters[{index}]", 1)
                      for index, item in enumerate(_list(body.get("filters", []), "filters"))),
        order_by=_order_by(body.get("order_by", []), metrics, dimensions),
        limit=limit,
        offset=offset,
        comparison=comparison,
        time_labels=time_labels,
        sample=sample,
    )


def parse_site_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField("required: the site's domain", "site_id")
    return value.strip().lower()


def parse_date_range(value: Any) -> str | tuple[str, str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return value[0], value[1]
    raise InvalidField("required: a period name (day, 7d, 30d, month, ...) "
                       "or two ISO dates", "date_range")


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidField("must be a list", path)
    return value


def _metrics(value: Any) -> tuple[str, ...]:
    items = _list(value, "metrics")
    if not items:
        raise InvalidField("at least one metric is required", "metrics")
    for index, name in enumerate(items):
        if not isinstance(name, str) or name not in METRICS:
            raise InvalidField(f"unknown metric {name!r} (known: {', '.join(METRICS)})",
                               f"metrics[{index}]")
    if len(set(items)) != len(items):
        raise InvalidField("a metric is listed twice", "metrics")
    return tuple(items)


def _dimensions(value: Any) -> tuple[str, ...]:
    items = _list(value, "dimensions")
    for index, name in enumerate(items):
        if not isinstance(name, str) or not is_known_dimension(name):
            raise InvalidField(f"unknown dimension {name!r}", f"dimensions[{index}]")
    if len(set(items)) != len(items):
        raise InvalidField("a dimension is listed twice", "dimensions")
    if sum(name.startswith("time") for name in items) > 1:
        raise InvalidField("at most one time dimension", "dimensions")
    return tuple(items)


def _filter(value: Any, path: str, depth: int) -> Filter:
    if not isinstance(value, list) or not value or not isinstance(value[0], str):
        raise InvalidField("a filter is [operator, dimension, [values]] or "
                           "[and|or, [filters]] or [not, filter]", path)
    operator = value[0]
    if operator in LOGICAL_OPERATORS and depth > MAX_FILTER_DEPTH:
        raise InvalidField(f"and, or and not nest at most {MAX_FILTER_DEPTH} deep", path)
    if operator in ("and", "or"):
        if len(value) != 2 or not isinstance(value[1], list) or not value[1]:
            raise InvalidField(f"{operator} takes a non-empty list of filters", f"{path}[1]")
        return Logical(operator, tuple(_filter(child, f"{path}[1][{index}]", depth + 1)
                                       for index, child in enumerate(value[1])))
    if operator == "not":
        if len(value) != 2:
            raise InvalidField("not takes one filter", path)
        return Logical("not", (_filter(value[1], f"{path}[1]", depth + 1),))
    if operator not in FILTER_OPERATORS:
        raise InvalidField(f"unknown operator {operator!r} (known: "
                           f"{', '.join(FILTER_OPERATORS + LOGICAL_OPERATORS)})", f"{path}[0]")
    if len(value) != 3:
        raise InvalidField("a filter is [operator, dimension, [values]]", path)
    dimension, values = value[1], value[2]
    if not isinstance(dimension, str) or not is_known_dimension(dimension) \
            or dimension.startswith("time"):
        raise InvalidField(f"unknown filter dimension {dimension!r}", f"{path}[1]")
    if not isinstance(values, list) or not values:
        raise InvalidField("must be a non-empty list of strings", f"{path}[2]")
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidField(f"at most {MAX_FILTER_VALUES} values", f"{path}[2]")
    for index, item in enumerate(values):
        if not isinstance(item, str):
            raise InvalidField("must be a string", f"{path}[2][{index}]")
    return Condition(operator, dimension, tuple(values), path)


def _order_by(value: Any, metrics: tuple[str, ...],
              dimensions: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    result = []
    for index, item in enumerate(_list(value, "order_by")):
        path = f"order_by[{index}]"
        if not isinstance(item, list) or len(item) != 2:
            raise InvalidField("an ordering is [metric or dimension, asc|desc]", path)
        name, direction = item
        if name not in metrics and name not in dimensions:
            raise InvalidField("must be one of the query's metrics or dimensions",
                               f"{path}[0]")
        if direction not in ("asc", "desc"):
            raise InvalidField("must be asc or desc", f"{path}[1]")
        result.append((name, direction))
    return tuple(result)


def _pagination(value: Any) -> tuple[int, int]:
    if not isinstance(value, dict):
        raise InvalidField("must be an object {limit, offset}", "pagination")
    limit = value.get("limit", DEFAULT_LIMIT)
    offset = value.get("offset", 0)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidField(f"must be an integer from 1 to {MAX_LIMIT}", "pagination.limit")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidField(f"must be an integer from 0 to {MAX_OFFSET}", "pagination.offset")
    return limit, offset


def _include(value: Any) -> tuple[bool, bool, bool]:
    if not isinstance(value, dict):
        raise InvalidField("must be an object", "include")
    for key in value:
        if key not in ("comparison", "time_labels", "sample"):
            raise InvalidField("unknown option (accepted: comparison, time_labels, sample)",
                               f"include.{key}")
    comparison = value.get("comparison")
    if comparison not in (None, False, "previous_period"):
        raise InvalidField("only previous_period is supported", "include.comparison")
    flags = []
    for name in ("time_labels", "sample"):
        flag = value.get(name, False)
        if not isinstance(flag, bool):
            raise InvalidField("must be true or false", f"include.{name}")
        flags.append(flag)
    return comparison == "previous_period", flags[0], flags[1]

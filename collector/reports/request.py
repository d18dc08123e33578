"""Parse and validate a Stats API v2 query body into a typed ``QuerySpec``.

Every error names the exact field (``filters[0][1]``, ``metrics[2]``) and the
reason, so a client can fix its request without guessing. Only names from the
allow-lists in ``dimensions`` and ``metrics`` get through; values stay values
and are bound as parameters later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from collector.errors import InvalidField
from collector.reports.dates import parse_moment
from collector.reports.dimensions import dimension as dimension_of
from collector.reports.dimensions import is_known_dimension
from collector.reports.metrics import METRICS
from collector.reports.query_schema import check_query_body

FILTER_OPERATORS = ("is", "is_not", "contains", "contains_not", "matches", "matches_not")
LOGICAL_OPERATORS = ("and", "or", "not")
# Plausible filters on these only at the top level (or inside has_done): below and, or
# and not, a goal filter leaves no single goal to convert, a host name no site part.
TOP_LEVEL_ONLY = ("event:goal", "event:hostname")
# Visit-level filters on events (Plausible's behavioral filters): the visits that did,
# or did not do, an event matching one condition on event dimensions.
BEHAVIORAL_OPERATORS = ("has_done", "has_not_done")
COMPARISON_MODES = ("previous_period", "year_over_year", "custom")
INCLUDE_FLAGS = ("time_labels", "sample", "total_rows", "imports")
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
    case_sensitive: bool = True  # Plausible's {"case_sensitive": false} modifier


@dataclass(frozen=True)
class Logical:
    operator: str  # and | or | not
    children: tuple[Filter, ...]


Filter = Condition | Logical


@dataclass(frozen=True)
class Comparison:
    """``include.comparisons``: which period the rows are compared with."""

    mode: str  # previous_period | year_over_year | custom
    date_range: tuple[str, str] | None = None  # custom: two ISO dates
    match_day_of_week: bool = False
    # The form the request used, named in errors and echoed back: Plausible's, or the
    # collector's older ``include.comparison: "previous_period"``.
    field: str = "include.comparison"


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
    compared_with: Comparison = Comparison("previous_period")
    time_labels: bool = False
    # Every metric may come from the visitor sample on large ranges (the dashboard's
    # choice: fast answers under filters), not only the distinct counts.
    sample: bool = False
    total_rows: bool = False  # meta.total_rows: the number of rows before pagination
    imports: bool = False  # meta says imported statistics are not included (there are none)


def parse_query(body: Any) -> QuerySpec:
    """The query ``body`` asks, once it fits the schema (``query_schema.json``) and
    Plausible's rules across fields; else InvalidField naming the field."""
    if not isinstance(body, dict):
        raise InvalidField("the body must be a JSON object", "body")
    check_query_body(body)
    metrics = _metrics(body.get("metrics"))
    dimensions = _dimensions(body.get("dimensions", []))
    limit, offset = _pagination(body.get("pagination", {}))
    comparison, time_labels, sample, total_rows, imports = _include(body.get("include", {}))
    filters = tuple(_filter(item, f"filters[{index}]", 1)
                    for index, item in enumerate(_list(body.get("filters", []), "filters")))
    _check_across_fields(metrics, dimensions, filters, time_labels)
    compared_with = _comparisons(body.get("include", {}).get("comparisons"))
    return QuerySpec(
        site_id=parse_site_id(body.get("site_id")),
        date_range=parse_date_range(body.get("date_range")),
        metrics=metrics,
        dimensions=dimensions,
        filters=filters,
        order_by=_order_by(body.get("order_by", []), metrics, dimensions),
        limit=limit,
        offset=offset,
        comparison=comparison or compared_with is not None,
        compared_with=compared_with or Comparison("previous_period"),
        time_labels=time_labels,
        sample=sample,
        total_rows=total_rows,
        imports=imports,
    )


def _check_across_fields(metrics: tuple[str, ...], dimensions: tuple[str, ...],
                         filters: tuple[Filter, ...], time_labels: bool) -> None:
    """Plausible's rules that join two fields."""
    if time_labels and not any(name.startswith("time") for name in dimensions):
        raise InvalidField("time_labels needs a time dimension", "include.time_labels")
    if "views_per_visit" in metrics:
        # Pageviews per visit of the visits that saw a page, or per page: Plausible refuses
        # the question. (It refuses every dimension; per visit dimension and time, the
        # collector answers it, as Plausible's dashboard graphs it over time.)
        field = f"metrics[{metrics.index('views_per_visit')}]"
        if any(leaf.dimension == "event:page" for leaf in leaves(filters)):
            raise InvalidField("views_per_visit cannot be combined with an event:page filter",
                               field)
        if any(name.startswith("event:") for name in dimensions):
            raise InvalidField("views_per_visit cannot be broken down by event dimensions",
                               field)
    # A conversion rate drops top-level property filters from its base (secondary.py);
    # one below and/or/not could not be dropped alone: Plausible refuses it too.
    rates = bool({"conversion_rate", "group_conversion_rate"} & set(metrics))
    for item in filters:
        for leaf in _below_logic(item):
            if leaf.dimension in TOP_LEVEL_ONLY:
                raise InvalidField(f"{leaf.dimension} can only be filtered at the top level, "
                                   "not inside and, or or not", f"{leaf.path}[1]")
            if rates and leaf.dimension.startswith("event:props:"):
                raise InvalidField("with conversion rates, custom property filters go at the "
                                   "top level only", f"{leaf.path}[1]")


def leaves(filters: tuple[Filter, ...]) -> list[Condition]:
    """Every condition of a filter tree, depth first."""
    found: list[Condition] = []
    for item in filters:
        found.extend([item] if isinstance(item, Condition) else leaves(item.children))
    return found


def _below_logic(item: Filter) -> Iterator[Condition]:
    """The conditions inside and, or and not (not those a has_done scopes)."""
    if isinstance(item, Logical) and item.operator in LOGICAL_OPERATORS:
        for child in item.children:
            if isinstance(child, Condition):
                yield child
            else:
                yield from _below_logic(child)


def parse_site_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField("required: the site's domain", "site_id")
    return value.strip().lower()


def parse_date_range(value: Any) -> str | tuple[str, str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        if any("T" in text for text in value):
            for index, text in enumerate(value):
                parse_moment(text, f"date_range[{index}]")
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
    if operator in LOGICAL_OPERATORS + BEHAVIORAL_OPERATORS and depth > MAX_FILTER_DEPTH:
        raise InvalidField(f"and, or and not nest at most {MAX_FILTER_DEPTH} deep", path)
    if operator in ("and", "or"):
        if len(value) != 2 or not isinstance(value[1], list) or not value[1]:
            raise InvalidField(f"{operator} takes a non-empty list of filters", f"{path}[1]")
        return Logical(operator, tuple(_filter(child, f"{path}[1][{index}]", depth + 1)
                                       for index, child in enumerate(value[1])))
    if operator == "not" or operator in BEHAVIORAL_OPERATORS:
        if len(value) != 2:
            raise InvalidField(f"{operator} takes one filter", path)
        return Logical(operator, (_filter(value[1], f"{path}[1]", depth + 1),))
    if operator not in FILTER_OPERATORS:
        known = FILTER_OPERATORS + LOGICAL_OPERATORS + BEHAVIORAL_OPERATORS
        raise InvalidField(f"unknown operator {operator!r} (known: {', '.join(known)})",
                           f"{path}[0]")
    if len(value) not in (3, 4):
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
        if dimension == "visit:country" and operator in ("is", "is_not") \
                and not _is_country_code(item):
            raise InvalidField("visit:country takes 2-letter country codes (ISO 3166-1)",
                               f"{path}[2][{index}]")
    return Condition(operator, dimension, tuple(values), path,
                     _case_sensitive(value[3] if len(value) == 4 else {}, f"{path}[3]"))


def _is_country_code(value: str) -> bool:
    """Plausible's rule: two characters. Also the blank (visits without a country), which
    v1 breakdowns leave out with it."""
    return len(value) == 2 or value in ("", dimension_of("visit:country").blank_label)


def _case_sensitive(modifiers: Any, path: str) -> bool:
    if not isinstance(modifiers, dict) or set(modifiers) - {"case_sensitive"}:
        raise InvalidField('the 4th element of a filter is {"case_sensitive": false}', path)
    flag = modifiers.get("case_sensitive", True)
    if not isinstance(flag, bool):
        raise InvalidField("must be true or false", f"{path}.case_sensitive")
    return flag


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


def _include(value: Any) -> tuple[bool, bool, bool, bool, bool]:
    """comparison, time_labels, sample, total_rows, imports."""
    if not isinstance(value, dict):
        raise InvalidField("must be an object", "include")
    for key in value:
        if key not in ("comparison", "comparisons", *INCLUDE_FLAGS):
            raise InvalidField("unknown option (accepted: comparison, comparisons, "
                               f"{', '.join(INCLUDE_FLAGS)})", f"include.{key}")
    comparison = value.get("comparison")
    if comparison not in (None, False, "previous_period"):
        raise InvalidField("only previous_period is supported", "include.comparison")
    flags = []
    for name in INCLUDE_FLAGS:
        flag = value.get(name, False)
        if not isinstance(flag, bool):
            raise InvalidField("must be true or false", f"include.{name}")
        flags.append(flag)
    return comparison == "previous_period", flags[0], flags[1], flags[2], flags[3]


def _comparisons(value: Any) -> Comparison | None:
    """Plausible's ``include.comparisons``: ``{"mode": ..., "date_range": [...] (custom),
    "match_day_of_week": bool}``; null or absent: no comparison."""
    if value is None:
        return None
    path = "include.comparisons"
    if not isinstance(value, dict):
        raise InvalidField("must be an object {mode, date_range, match_day_of_week}", path)
    for key in value:
        if key not in ("mode", "date_range", "match_day_of_week"):
            raise InvalidField("unknown option (accepted: mode, date_range, "
                               "match_day_of_week)", f"{path}.{key}")
    mode = value.get("mode")
    if mode not in COMPARISON_MODES:
        raise InvalidField(f"must be one of {', '.join(COMPARISON_MODES)}", f"{path}.mode")
    match = value.get("match_day_of_week", False)
    if not isinstance(match, bool):
        raise InvalidField("must be true or false", f"{path}.match_day_of_week")
    dates = value.get("date_range")
    if mode != "custom":
        if dates is not None:
            raise InvalidField("only with the custom mode", f"{path}.date_range")
        return Comparison(mode, None, match, path)
    if not (isinstance(dates, list) and len(dates) == 2
            and all(isinstance(item, str) for item in dates)):
        raise InvalidField("the custom mode needs two ISO dates", f"{path}.date_range")
    return Comparison(mode, (dates[0], dates[1]), match, path)

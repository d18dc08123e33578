"""Metrics a report's rows get from a second query, joined to them by their dimensions.

Two of Plausible's Stats API v2 figures are not counts of the rows' own events:

- ``group_conversion_rate``: the row's converting visitors over the visitors of the
  same group (same dimension values) without the query's top-level goal and custom
  property filters.
- ``bounce_rate`` and ``visit_duration`` by ``event:page``: those of the visits that
  *entered* on the page (the visits table grouped by ``visit:entry_page``, every
  ``event:page`` filter read as an entry-page filter), as Plausible answers them.

The main query counts everything else; each second query is counted the same way
(same plan rules, sample and k-threshold) and its components join the rows' own under
names of their own (``group_visitors``; ``bounces``, ``entries``, ``entry_duration``),
from which ``collector.reports.metrics`` derives the values. An
ordering by such a metric is applied here, over at most ``MAX_LIMIT`` rows.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import Any

from collector.reports.dimensions import PROPS_PREFIX
from collector.reports.metrics import metric_value
from collector.reports.request import (
    BEHAVIORAL_OPERATORS,
    MAX_LIMIT,
    Condition,
    Filter,
    Logical,
    QuerySpec,
)

Row = tuple[list[Any], dict[str, float]]
PAGE = "event:page"
ENTRY_PAGE = "visit:entry_page"
GROUP_RATE = "group_conversion_rate"
# Visit metrics a page row takes from the visits entering on it.
ENTRY_METRICS = ("bounce_rate", "visit_duration")
# The components second queries add to a row, and the one each joined figure divides by.
GROUP_COMPONENTS = ("group_visitors",)
ENTRY_COMPONENTS = ("bounces", "entries", "entry_duration")
_BASES = {GROUP_RATE: "group_visitors", "bounce_rate": "entries"}


def entry_metrics(spec: QuerySpec) -> tuple[str, ...]:
    """The visit metrics of ``spec`` that come from the visits entering on its pages."""
    if PAGE not in spec.dimensions:
        return ()
    return tuple(name for name in spec.metrics if name in ENTRY_METRICS)


def joined_metrics(spec: QuerySpec) -> tuple[str, ...]:
    return entry_metrics(spec) + ((GROUP_RATE,) if GROUP_RATE in spec.metrics else ())


def joined_components(spec: QuerySpec) -> tuple[str, ...]:
    """The components ``spec``'s second queries add to its rows."""
    return (GROUP_COMPONENTS if GROUP_RATE in spec.metrics else ()) \
        + (ENTRY_COMPONENTS if entry_metrics(spec) else ())


def main_spec(spec: QuerySpec) -> QuerySpec:
    """``spec`` without the metrics second queries answer (visitors when nothing is left:
    the main rows say which groups there are)."""
    joined = joined_metrics(spec)
    if not joined:
        return spec
    direct = tuple(name for name in spec.metrics if name not in joined) or ("visitors",)
    order = tuple(pair for pair in spec.order_by if pair[0] not in joined)
    return dataclasses.replace(spec, metrics=direct, order_by=order)


def ordered_here(spec: QuerySpec) -> bool:
    """True when the rows' order depends on a joined metric: ordered and paged here."""
    joined = joined_metrics(spec)
    if spec.order_by:
        return any(name in joined for name, _ in spec.order_by)
    return bool(joined) and spec.metrics[0] in joined


def first_rows(spec: QuerySpec) -> QuerySpec:
    """The main query of a report ordered here: its first ``MAX_LIMIT`` rows."""
    return dataclasses.replace(main_spec(spec), order_by=(), limit=MAX_LIMIT, offset=0)


def without_conversion_filters(filters: tuple[Filter, ...]) -> tuple[Filter, ...]:
    """``filters`` without the top-level goal and custom property filters: the base a
    conversion rate divides by (Plausible's)."""
    return tuple(item for item in filters if not (
        isinstance(item, Condition)
        and (item.dimension == "event:goal" or item.dimension.startswith(PROPS_PREFIX))))


def group_spec(spec: QuerySpec) -> QuerySpec | None:
    """Each group's visitors without its conversion filters."""
    if GROUP_RATE not in spec.metrics:
        return None
    return dataclasses.replace(spec, metrics=("visitors",), order_by=(), comparison=False,
                               filters=without_conversion_filters(spec.filters))


def entry_spec(spec: QuerySpec) -> QuerySpec | None:
    """The entry-page visit metrics of ``spec``'s pages, from the visits table."""
    metrics = entry_metrics(spec)
    if not metrics:
        return None
    return dataclasses.replace(
        spec, metrics=metrics, order_by=(), comparison=False,
        dimensions=tuple(ENTRY_PAGE if name == PAGE else name for name in spec.dimensions),
        filters=tuple(_renamed(item) for item in spec.filters))


def _renamed(item: Filter) -> Filter:
    """``item`` with event:page read as the entry page; behavioral filters keep testing
    events (they test what the visit did, not where it entered)."""
    if isinstance(item, Condition):
        return dataclasses.replace(item, dimension=ENTRY_PAGE) if item.dimension == PAGE \
            else item
    if item.operator in BEHAVIORAL_OPERATORS:
        return item
    return Logical(item.operator, tuple(_renamed(child) for child in item.children))


def with_groups(rows: list[Row], groups: list[Row]) -> list[Row]:
    """``rows`` with each group's visitors (``group_visitors``), 0 for a group not found."""
    found = {tuple(dims): parts.get("visitors", 0.0) for dims, parts in groups}
    return [(dims, {**parts, "group_visitors": found.get(tuple(dims), 0.0)})
            for dims, parts in rows]


def with_entries(rows: list[Row], entries: list[Row]) -> list[Row]:
    """``rows`` with the bounces and durations of the visits entering on their pages."""
    found = {tuple(dims): parts for dims, parts in entries}
    joined = []
    for dims, parts in rows:
        entered = found.get(tuple(dims), {})
        visits = entered.get("visits", 0.0)
        joined.append((dims, {**parts, "bounces": entered.get("bounces", 0.0),
                              "entries": visits,
                              "entry_duration": entered.get("duration", 0.0)}))
    return joined


def ordered(spec: QuerySpec, rows: list[Row], bases: Mapping[str, float],
            paginate: bool = True) -> list[Row]:
    """``rows`` in ``spec``'s order (Plausible's default: time, then the first metric
    descending), ties by the dimensions, and the page asked for."""
    terms = list(spec.order_by) or [
        *((name, "asc") for name in spec.dimensions if name.startswith("time:")),
        (spec.metrics[0], "desc")]
    terms += [(name, "asc") for name in spec.dimensions]
    result = list(rows)
    for name, direction in reversed(terms):  # stable sorts, the last term first
        result.sort(key=_sort_key(spec, name, bases), reverse=direction == "desc")
    return result[spec.offset:spec.offset + spec.limit] if paginate else result


def _sort_key(spec: QuerySpec, name: str,
              bases: Mapping[str, float]) -> Callable[[Row], tuple[int, Any]]:
    return functools.partial(_sort_value, spec, name, bases)


def _sort_value(spec: QuerySpec, name: str, bases: Mapping[str, float],
                row: Row) -> tuple[int, Any]:
    dims, parts = row
    if name in spec.dimensions:
        value = dims[spec.dimensions.index(name)]
        return 0, "" if value is None else str(value)
    number = metric_value(name, parts, base_of(name, parts, bases))
    return (0, 0) if number is None else (1, number)


def released_value(name: str, parts: Mapping[str, float], total: float,
                   k: int) -> float | int | None:
    """Metric ``name`` of a share link's released ``parts``: none when the visits or
    visitors it divides by (a page's entry visits, a group) were released under k.
    Promise: a share link shows no figure about fewer than k (the released base is noisy,
    so the test spends no privacy)."""
    base = "entries" if name == "visit_duration" and "entry_duration" in parts \
        else _BASES.get(name)
    if base is not None and base in parts and parts[base] < k:
        return None
    return metric_value(name, parts, base_of(name, parts, {name: total}))


def base_of(name: str, parts: Mapping[str, float], bases: Mapping[str, float]) -> float:
    """What metric ``name`` divides by: the group's visitors, or the period's."""
    if name == GROUP_RATE:
        return parts.get("group_visitors", 0.0)
    return bases.get(name, 0.0)

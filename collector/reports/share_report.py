"""A query report as a share token gets it: exact rows in, released rows out.

``collector.reports.query`` counts the report with every visitor's contribution
bounded and without pagination; here its rows (and totals, and the comparison period)
become one release (``collector.reports.release``): suppressed under k, paid for from
the token's budget, noised, and only then ordered and paginated, so that neither the
order nor a page boundary follows an exact count. A release the token got earlier in
the hour is shown again as it was (``Releaser.recall``), without counting anything.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Sequence
from typing import Any

from collector.reports.dates import DateRange, bucket_labels
from collector.reports.metrics import change
from collector.reports.release import Key, Parts, Published, Releaser, Table, suppression_note
from collector.reports.request import Condition, Filter, QuerySpec
from collector.reports.secondary import released_value

Row = tuple[list[Any], dict[str, float]]
RATES = ("percentage", "conversion_rate", "group_conversion_rate", "bounce_rate")


@dataclasses.dataclass(frozen=True)
class ExactReport:
    """What the query counted for a share token, before anything is released."""

    rows: list[Row]
    components: tuple[str, ...]
    total: float | None  # visitors of the period, when a metric divides by them
    comparison: list[Row] | None = None  # per row: the previous period's dims and parts
    comparison_total: float | None = None
    # With both percentage and conversion_rate: the conversion rate's own base (visitors
    # without the goal and property filters); ``total`` is then the percentage's.
    conversion_total: float | None = None
    comparison_conversion_total: float | None = None


def filled(spec: QuerySpec, rows: list[Row], period: DateRange, timezone: str) -> list[Row]:
    """Every bucket of a time-only breakdown: an empty bucket is suppressed like a rare one,
    else a missing bucket would tell "nobody" from "a few"."""
    if len(spec.dimensions) != 1 or not spec.dimensions[0].startswith("time:"):
        return rows
    found = {dims[0]: (dims, parts) for dims, parts in rows}
    return [found.get(label, ([label], {})) for label in
            bucket_labels(spec.dimensions[0], period, timezone)]


def question(spec: QuerySpec, period: DateRange, previous: DateRange | None,
             components: tuple[str, ...], timezone: str) -> dict[str, Any]:
    """What ``spec`` asks, normalised: metrics, order and pagination change no count."""
    return {"report": "query", "site": spec.site_id, "timezone": timezone,
            "period": [period.start.isoformat(), period.end.isoformat()],
            "previous": [previous.start.isoformat(), previous.end.isoformat()]
            if previous else None,
            "dimensions": list(spec.dimensions), "components": list(components),
            "totals": sorted({"percentage", "conversion_rate"} & set(spec.metrics)),
            "filters": sorted(_normalised(item) for item in spec.filters)}


def _normalised(item: Filter) -> str:
    """A filter as canonical text: values sorted and unique, and/or children sorted."""
    if isinstance(item, Condition):
        shape: Any = [item.operator, item.dimension, sorted(set(item.values))]
    elif item.operator == "not":
        shape = ["not", _normalised(item.children[0])]
    else:
        shape = [item.operator, sorted({_normalised(child) for child in item.children})]
    return json.dumps(shape, separators=(",", ":"))


def release(spec: QuerySpec, releaser: Releaser, asked: dict[str, Any],
            exact: ExactReport) -> Published:
    """Publish ``exact``, the counts ``asked`` for, as one release of its tables."""
    rows_per_visitor = releaser.bounds.rows if spec.dimensions else 1
    tables = [Table("rows", [(_key(dims), parts) for dims, parts in exact.rows],
                    exact.components, rows_per_visitor)]
    if exact.total is not None:
        tables.append(_total_table("total", exact.total, exact.conversion_total))
    earlier = None
    if exact.comparison is not None:
        earlier = [dims for dims, _ in exact.comparison]
        tables.append(Table("comparison", [(_key(dims), parts) for (dims, _), (_, parts)
                                           in zip(exact.rows, exact.comparison)],
                            exact.components, rows_per_visitor))
        if exact.comparison_total is not None:
            tables.append(_total_table("comparison_total", exact.comparison_total,
                                       exact.comparison_conversion_total))
    return releaser.publish(asked, tables, shape=earlier)


def _total_table(name: str, total: float, conversion: float | None) -> Table:
    """The period's visitors (and the conversion rate's own base, when apart): one row
    each visitor counts in once."""
    parts = {"visitors": total, **({"conversion": conversion} if conversion is not None
                                   else {})}
    return Table(name, [((), parts)], tuple(parts), 1, row_bounds={part: 1 for part in parts})


def share_results(spec: QuerySpec, releaser: Releaser,
                  published: Published) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The results ``published`` holds (ordered, one page) and the meta they add."""
    total = _bases(published, "total")
    earlier: list[list[Any]] | None = published.shape
    results = []
    for index, key in enumerate(published.tables["rows"]):
        noisy = published.row("rows", key)
        result: dict[str, Any] = {"dimensions": list(key),
                                  "metrics": _metrics(spec, noisy, total, releaser.access.k)}
        if earlier is not None:
            previous = published.row("comparison", key)
            metrics = _metrics(spec, previous, _bases(published, "comparison_total"),
                               releaser.access.k)
            result["comparison"] = {
                "dimensions": earlier[index], "metrics": metrics,
                "change": [None if now is None or then is None else change(name, now, then)
                           for name, now, then in zip(spec.metrics, result["metrics"],
                                                      metrics)]}
        results.append((noisy, result))
    page = _ordered(spec, results)[spec.offset:spec.offset + spec.limit]
    meta: dict[str, Any] = {"privacy": releaser.meta(published)}
    if spec.total_rows:  # the released rows, rare ones already folded
        meta["total_rows"] = len(results)
    suppressed = _suppressed(page, releaser.access.k)
    if suppressed:
        meta["suppressed"] = suppressed
    return page, meta


def _key(dims: Sequence[Any]) -> Key:
    return tuple(dims)


def _bases(published: Published, table: str) -> dict[str, float]:
    """What percentage and conversion_rate divide by, as ``table`` released them (none
    for a base suppressed or not asked)."""
    parts = published.row(table, ()) if table in published.tables else None
    if not parts:
        return {}
    return {"percentage": parts["visitors"],
            "conversion_rate": parts.get("conversion", parts["visitors"])}


def _metrics(spec: QuerySpec, parts: Parts | None, bases: dict[str, float],
             k: int) -> list[float | int | None]:
    if parts is None:
        return [None for _ in spec.metrics]
    values: list[float | int | None] = []
    for name in spec.metrics:
        if name in ("percentage", "conversion_rate") and not bases.get(name):
            values.append(None)  # the base itself was too small to show
            continue
        value = released_value(name, parts, bases.get(name, 0.0), k)
        # Noise can push a share above the whole: a rate stays within 0..100.
        values.append(min(value, 100) if name in RATES and value is not None else value)
    return values


def _ordered(spec: QuerySpec, results: list[tuple[Parts | None, dict[str, Any]]]) \
        -> list[dict[str, Any]]:
    """``order_by`` over the released values (the builder's default: time ascending, then
    the first metric descending, then each dimension); suppressed values last."""
    terms: list[tuple[str, bool]] = [(name, direction == "desc")
                                     for name, direction in spec.order_by]
    if not spec.order_by:
        terms += [(name, False) for name in spec.dimensions if name.startswith("time:")]
        terms.append((spec.metrics[0], True))
    terms += [(name, False) for name in spec.dimensions]
    ordered = list(results)
    for name, descending in reversed(terms):  # stable sorts, the last term first
        ordered.sort(key=functools.partial(_sort_value, spec, name, descending),
                     reverse=descending)
    return [result for _, result in ordered]


def _sort_value(spec: QuerySpec, name: str, descending: bool,
                item: tuple[Parts | None, dict[str, Any]]) -> tuple[bool, Any]:
    """A sort key; a suppressed value sorts after every other either way."""
    _, result = item
    if name in spec.dimensions:
        value = result["dimensions"][spec.dimensions.index(name)]
        return (False, "" if value is None else str(value))
    value = result["metrics"][spec.metrics.index(name)]
    if value is None:
        return (not descending, 0)
    return (descending, value)


def _suppressed(page: list[dict[str, Any]], k: int) -> dict[str, Any]:
    rows = [index for index, result in enumerate(page)
            if all(value is None for value in result["metrics"])]
    earlier = [index for index, result in enumerate(page) if "comparison" in result
               and all(value is None for value in result["comparison"]["metrics"])]
    if not rows and not earlier:
        return {}
    return {"results": rows, "comparison": earlier, "metrics": "all",
            "reason": suppression_note(k)}

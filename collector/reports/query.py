"""Running a report: plan, sample, query, derive metrics, totals and the comparison period.

Returns plain rows (``dimensions``, ``metrics``, optional ``comparison``) plus
``meta`` in the shape of Plausible's Stats API v2; ``api`` and ``csv`` only
serialise them. For a share token (``releaser``) the same counts are taken with each
visitor's contribution bounded, then released by ``collector.reports.share_report``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from collector.errors import InvalidField, StorageError
from collector.reports.builder import (
    BuiltQuery,
    Plan,
    SiteContext,
    build,
    components_of,
    leaves,
    plan,
)
from collector.reports.contribution import ContributionBounds
from collector.reports.dates import DateRange, bucket_labels, resolve
from collector.reports.dimensions import resolved_time
from collector.reports.metrics import change, metric_value
from collector.reports.release import Releaser
from collector.reports.request import Condition, QuerySpec
from collector.reports.revenue import present as present_revenue
from collector.reports.revenue import refuse_public_revenue
from collector.reports.sampling import Sampler
from collector.reports.share_report import (
    ExactReport,
    filled,
    question,
    release,
    share_results,
)
from collector.storage import Store


@dataclass
class Report:
    results: list[dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)
    period: DateRange | None = None


def run_report(store: Store, spec: QuerySpec, context: SiteContext, now: datetime,
               force_raw: bool = False, allow_sampling: bool = True,
               sampler: Sampler | None = None, releaser: Releaser | None = None) -> Report:
    """The report ``spec`` asks for, as of ``now``; released through ``releaser`` (a share
    token's) when given.

    ``sampler`` picks the samples and remembers range sizes between reports; an app
    passes its own, and without one this report alone uses a fresh default.
    """
    period = period_of(store, spec, context, now)
    spec = resolved_time(spec, period)
    if releaser is not None:
        refuse_public_revenue(spec)
        # Noise is scaled to one visitor's bounded weight: a SAMPLE would scale it up.
        allow_sampling = False
    _validate(spec, context)
    sampler = sampler or Sampler()
    # Folding rare rows must see exact visitors, so k > 1 never samples them.
    visitor_sample = sampler.visitor_sample(store, context.site, period) \
        if allow_sampling and context.k <= 1 else 1
    reading = _Reading(store, context, sampler, force_raw, allow_sampling, visitor_sample,
                       releaser.bounds if releaser else None)
    chosen = reading.plan(spec, period)
    # Totals and the comparison read as the main query ended up reading: a plan that
    # reads the visitor sample's rows keeps that sample for them (they read its rows
    # too); otherwise its own visitor sample, none for a row SAMPLE.
    visitor_sample = chosen.visitor_sample
    reads_visitor_sample = visitor_sample > 1 or (
        chosen.sample is not None and chosen.sample * reading.visitor_sample == 1)
    if not reads_visitor_sample:
        reading = dataclasses.replace(reading, visitor_sample=visitor_sample)
    meta: dict[str, Any] = {"source": "rollup" if chosen.is_rollup else "raw",
                            "table": chosen.source + ("_daily" if chosen.daily else "")}
    if chosen.sample is not None:
        meta["sample_percent"] = round(chosen.sample * 100, 2)
    if visitor_sample > 1:
        meta["visitors_sample_percent"] = round(100 / visitor_sample, 2)
    if spec.time_labels:
        time_dimension = _time_dimension(spec)
        if time_dimension:
            meta["time_labels"] = bucket_labels(time_dimension, period, context.timezone)
    previous = period.previous(context.timezone) if spec.comparison else None
    if previous is not None:
        meta["comparison_date_range"] = [previous.first_day.isoformat(),
                                         previous.last_day.isoformat()]
    if releaser is not None:
        asked = question(spec, period, previous, components_of(spec.metrics, chosen.source),
                         context.timezone)
        published = releaser.recall(asked) or release(
            spec, releaser, asked, _exact(reading, spec, period, previous, chosen))
        results, released = share_results(spec, releaser, published)
        return Report(results, {**meta, **released}, period)
    rows = _aggregate(store, build(spec, context, period, chosen), chosen)
    total = _total_visitors(reading, spec, period)
    results = [_result(spec, row, total) for row in rows]
    if previous is not None:
        earlier, previous_total = _comparison(reading, spec, period, previous, rows)
        _add_comparison(spec, earlier, previous_total, results)
    present_revenue(spec, context.goals, results, meta)
    return Report(results, meta, period)


@dataclass(frozen=True)
class _Reading:
    """What every query of one report shares: where it reads and how it may sample."""

    store: Store
    context: SiteContext
    sampler: Sampler
    force_raw: bool
    allow_sampling: bool
    visitor_sample: int
    bounds: ContributionBounds | None = None  # a share token's: contributions clipped

    def plan(self, spec: QuerySpec, period: DateRange) -> Plan:
        """A rollup when it can answer: it holds exact sums but only visitor samples, so
        exact visitors (small ranges, k > 1) come from the raw tables. Raw queries over
        very many rows read a SAMPLE of them instead, every metric scaled."""
        chosen = plan(spec, period, self.force_raw or self.visitor_sample == 1,
                      self.context.timezone)
        if (chosen.final or (spec.sample and not chosen.is_rollup)) and self.visitor_sample > 1:
            # Exit pages need collapsed visits (FINAL), which costs seconds on millions of
            # them: read the rows of the same 1/n visitor sample instead, every metric scaled.
            # A query that asks for it (include.sample) reads the raw tables that way too.
            return dataclasses.replace(chosen, sample=1 / self.visitor_sample)
        if not chosen.is_rollup and self.allow_sampling:
            sample = self.sampler.row_sample(self.store, chosen.source, self.context.site,
                                             period)
            if sample is not None:
                return dataclasses.replace(chosen, sample=sample)
        return dataclasses.replace(chosen, visitor_sample=self.visitor_sample)


def _exact(reading: _Reading, spec: QuerySpec, period: DateRange, previous: DateRange | None,
           chosen: Plan) -> ExactReport:
    """A share token's report before release: every row (no page), visitors bounded."""
    rows = _aggregate(reading.store, build(spec, reading.context, period, chosen,
                                           paginate=False, bounds=reading.bounds), chosen)
    rows = filled(spec, rows, period, reading.context.timezone)
    exact = ExactReport(rows, components_of(spec.metrics, chosen.source),
                        _total_visitors(reading, spec, period) if _needs_total(spec) else None)
    if previous is None:
        return exact
    earlier, total = _comparison(reading, spec, period, previous, rows)
    return dataclasses.replace(exact, comparison=earlier,
                               comparison_total=total if _needs_total(spec) else None)


def _validate(spec: QuerySpec, context: SiteContext) -> None:
    goal_filtered = any(leaf.dimension == "event:goal" for leaf in leaves(spec.filters))
    for index, name in enumerate(spec.metrics):
        if name == "conversion_rate" and "event:goal" not in spec.dimensions \
                and not goal_filtered:
            raise InvalidField("conversion_rate needs the event:goal dimension or a goal "
                               "filter", f"metrics[{index}]")
        if name == "percentage" and not any(not d.startswith("time:") for d in spec.dimensions):
            raise InvalidField("percentage needs a dimension other than time",
                               f"metrics[{index}]")


def period_of(store: Store, spec: QuerySpec, context: SiteContext, now: datetime) -> DateRange:
    """The UTC interval ``spec.date_range`` names in the site's timezone ("all": from its
    first event)."""
    return resolve(spec.date_range, context.timezone, now, _first_day(store, spec, context))


def _first_day(store: Store, spec: QuerySpec, context: SiteContext) -> date | None:
    if spec.date_range != "all":
        return None
    found = store.rows("SELECT min(toDate(timestamp, {tz:String})), count() FROM events "
                       "WHERE site = {site:String}", {"tz": context.timezone,
                                                      "site": context.site})
    return found[0][0] if found and found[0][1] else None


def _aggregate(store: Store, built: BuiltQuery, chosen: Plan) -> list[tuple[list[Any],
                                                                              dict[str, float]]]:
    try:
        _, rows = store.query(built.sql, built.parameters)
    except StorageError as error:
        if "regular expression" in str(error).lower() or "re2" in str(error).lower():
            raise InvalidField("not a valid regular expression", "filters") from None
        raise
    scale = 1 / chosen.sample if chosen.sample else 1.0
    width = len(built.dimensions)
    found = []
    for row in rows:
        dimensions = [_shown(value) for value in row[:width]]
        parts = {name: float(value) * scale for name, value in zip(built.components,
                                                                   row[width:])}
        found.append((dimensions, parts))
    return found


def _shown(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _result(spec: QuerySpec, row: tuple[list[Any], dict[str, float]],
            total: float) -> dict[str, Any]:
    dimensions, parts = row
    return {"dimensions": dimensions,
            "metrics": [metric_value(name, parts, total) for name in spec.metrics]}


def _needs_total(spec: QuerySpec) -> bool:
    return bool({"percentage", "conversion_rate"} & set(spec.metrics))


def _total_visitors(reading: _Reading, spec: QuerySpec, period: DateRange) -> float:
    """Visitors of the whole period, the base of percentage and conversion_rate."""
    if not _needs_total(spec):
        return 0.0
    # Conversion rate divides converting visitors by all visitors: drop the goal filters.
    kept = tuple(item for item in spec.filters
                 if not (isinstance(item, Condition) and item.dimension == "event:goal"))
    total_spec = dataclasses.replace(spec, metrics=("visitors",), dimensions=(),
                                     filters=kept, order_by=(), comparison=False)
    chosen = reading.plan(total_spec, period)
    rows = _aggregate(reading.store, build(total_spec, dataclasses.replace(reading.context, k=1),
                                           period, chosen, bounds=reading.bounds), chosen)
    return rows[0][1]["visitors"] if rows else 0.0


def _comparison(reading: _Reading, spec: QuerySpec, period: DateRange, previous: DateRange,
                rows: list[tuple[list[Any], dict[str, float]]]) \
        -> tuple[list[tuple[list[Any], dict[str, float]]], float]:
    """For each of ``rows``, its dimensions and components in the previous period (time
    buckets paired by position), and that period's total visitors."""
    context = reading.context
    chosen = reading.plan(spec, previous)
    unpaged = dataclasses.replace(spec, comparison=False)
    found = _aggregate(reading.store, build(unpaged, context, previous, chosen, paginate=False,
                                            bounds=reading.bounds), chosen)
    total = _total_visitors(reading, spec, previous)
    earlier = {tuple(_moved(spec, dims, previous, period, context)): (dims, parts)
               for dims, parts in found}
    return [earlier.get(tuple(dims), (_moved(spec, dims, period, previous, context), {}))
            for dims, _ in rows], total


def _add_comparison(spec: QuerySpec, earlier: list[tuple[list[Any], dict[str, float]]],
                    total: float, results: list[dict[str, Any]]) -> None:
    for result, (dims, parts) in zip(results, earlier):
        metrics = [metric_value(name, _filled(parts), total) for name in spec.metrics]
        result["comparison"] = {
            "dimensions": dims, "metrics": metrics,
            "change": [change(name, now_value, then_value) for name, now_value, then_value
                       in zip(spec.metrics, result["metrics"], metrics)]}
    if not spec.dimensions and not results:
        results.append({"dimensions": [], "metrics": [0 for _ in spec.metrics]})


def _filled(parts: dict[str, float]) -> dict[str, float]:
    """``parts`` with the base components it lacks as zeros (the others kept: engagement)."""
    return {**{name: 0.0 for name in
               ("visitors", "visits", "pageviews", "events", "bounces", "duration")}, **parts}


def _time_dimension(spec: QuerySpec) -> str | None:
    return next((name for name in spec.dimensions if name.startswith("time:")), None)


def _moved(spec: QuerySpec, dims: list[Any], source: DateRange, target: DateRange,
           context: SiteContext) -> list[Any]:
    """Map time buckets by position: bucket i of one period pairs with bucket i of the other."""
    time_dimension = _time_dimension(spec)
    if time_dimension is None:
        return list(dims)
    index = spec.dimensions.index(time_dimension)
    source_labels = bucket_labels(time_dimension, source, context.timezone)
    target_labels = bucket_labels(time_dimension, target, context.timezone)
    moved = list(dims)
    position = source_labels.index(dims[index]) if dims[index] in source_labels else -1
    moved[index] = target_labels[position] if 0 <= position < len(target_labels) else None
    return moved

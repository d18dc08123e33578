"""Running a report: plan, sample, query, derive metrics, totals and the comparison period.

Returns plain rows (``dimensions``, ``metrics``, optional ``comparison``) plus
``meta`` in the shape of Plausible's Stats API v2; ``api`` and ``csv`` only
serialise them. For a share token (``releaser``) the same counts are taken with each
visitor's contribution bounded, then released by ``collector.reports.share_report``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from collector.errors import InvalidField, StorageError
from collector.reports.builder import (
    BuiltQuery,
    Plan,
    SiteContext,
    build,
    plan,
    spec_components,
)
from collector.reports.contribution import ContributionBounds
from collector.reports.dates import (
    DateRange,
    bucket_labels,
    days_range,
    local_midnight,
    moment_range,
    report_day,
    resolve,
    zone,
)
from collector.reports.dimensions import resolved_time
from collector.reports.metrics import change, default_value, metric_value
from collector.reports.release import Releaser
from collector.reports.request import BEHAVIORAL_OPERATORS, Condition, Filter, QuerySpec
from collector.reports.revenue import present as present_revenue
from collector.reports.revenue import refuse_public_revenue
from collector.reports.sampling import Sampler
from collector.reports.secondary import (
    base_of,
    entry_spec,
    first_rows,
    group_spec,
    joined_components,
    main_spec,
    ordered,
    ordered_here,
    with_entries,
    with_groups,
    without_conversion_filters,
)
from collector.reports.share_report import (
    ExactReport,
    filled,
    question,
    release,
    share_results,
)
from collector.reports.total_rows import count_rows
from collector.storage import Store

Row = tuple[list[Any], dict[str, float]]


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
    chosen = reading.plan(main_spec(spec), period)
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
    previous = compared_period(spec, period, context.timezone, now) if spec.comparison \
        else None
    if previous is not None:
        meta["comparison_date_range"] = [previous.first_day.isoformat(),
                                         previous.last_day.isoformat()]
    if releaser is not None:
        asked = question(spec, period, previous, _released_components(spec, chosen),
                         context.timezone)
        published = releaser.recall(asked) or release(
            spec, releaser, asked, _exact(reading, spec, period, previous, chosen))
        results, released = share_results(spec, releaser, published)
        return Report(results, {**meta, **released}, period)
    bases = _bases(reading, spec, period)
    rows = _counted(reading, spec, period, chosen, bases)
    if spec.total_rows:
        meta["total_rows"] = count_rows(store, build(main_spec(spec), context, period, chosen,
                                                     paginate=False, bounds=reading.bounds))
    if previous is not None:
        rows = _every_bucket(spec, rows, period, context.timezone)
    results = [_result(spec, row, bases) for row in rows]
    if previous is not None:
        earlier, previous_bases = _comparison(reading, spec, period, previous, rows)
        _add_comparison(spec, earlier, previous_bases, results)
    present_revenue(spec, context.goals, results, meta)
    return Report(results, meta, period)


def _counted(reading: _Reading, spec: QuerySpec, period: DateRange, chosen: Plan,
             bases: dict[str, float], paginate: bool = True) -> list[Row]:
    """The rows of ``spec`` with the components of its second queries joined in
    (``collector.reports.secondary``), in its order; one page of them if ``paginate``."""
    here = paginate and ordered_here(spec)
    main = first_rows(spec) if here else main_spec(spec)
    rows = _aggregate(reading.store, build(main, reading.context, period, chosen,
                                           paginate=paginate, bounds=reading.bounds), chosen)
    for second, join in ((group_spec(spec), with_groups), (entry_spec(spec), with_entries)):
        if second is not None:
            second_plan = reading.plan(second, period)
            found = _aggregate(reading.store, build(second, reading.context, period,
                                                    second_plan, paginate=False,
                                                    bounds=reading.bounds), second_plan)
            rows = join(rows, found)
    return ordered(spec, rows, bases) if here else rows


def _released_components(spec: QuerySpec, chosen: Plan) -> tuple[str, ...]:
    """What a share token's rows release: the main query's components and those its
    second queries join in (each counted with every visitor's contribution bounded)."""
    joined = joined_components(spec)
    return tuple(part for part in spec_components(main_spec(spec), chosen.source)
                 if part not in joined) + joined


def compared_period(spec: QuerySpec, period: DateRange, timezone: str,
                    now: datetime) -> DateRange:
    """The period ``include.comparisons`` names, as Plausible picks it: the days just before
    (as many as the range has up to today), the same days 365 days earlier, or given dates;
    with ``match_day_of_week``, moved to start on the range's weekday."""
    how = spec.compared_with
    where = how.field
    if how.mode == "custom":
        assert how.date_range is not None
        first, last = (report_day(text, f"{where}.date_range[{index}]")
                       for index, text in enumerate(how.date_range))
        return days_range(first, last, timezone, f"{where}.date_range")
    whole_days = (period.start == local_midnight(period.first_day, timezone)
                  and period.end == local_midnight(period.last_day + timedelta(days=1), timezone))
    if not whole_days:  # a range of moments (24h, two datetimes): shifted as it is
        shift = period.end - period.start if how.mode == "previous_period" \
            else timedelta(days=365)
        return moment_range(period.start - shift, period.end - shift, timezone)
    today = now.astimezone(zone(timezone)).date()
    last = max(period.first_day, min(period.last_day, today))
    back = timedelta(days=365) if how.mode == "year_over_year" \
        else last - period.first_day + timedelta(days=1)
    first, last = period.first_day - back, last - back
    if how.match_day_of_week:
        first, last = _same_weekday(first, last, period.first_day)
    return days_range(first, last, timezone, where)


def _same_weekday(first: date, last: date, source_first: date) -> tuple[date, date]:
    """``first``..``last`` moved to start on ``source_first``'s weekday: to the next such
    day, or the one before when the next is ``source_first`` itself (Plausible's rule)."""
    ahead = (source_first.weekday() - first.weekday()) % 7
    if ahead == 0:
        return first, last
    moved = first + timedelta(days=ahead)
    if moved == source_first:
        moved = first - timedelta(days=7 - ahead)
    return moved, last + (moved - first)


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
    rows = _counted(reading, spec, period, chosen, {}, paginate=False)
    rows = filled(spec, rows, period, reading.context.timezone)
    total, conversion = _share_bases(reading, spec, period)
    exact = ExactReport(rows, _released_components(spec, chosen), total,
                        conversion_total=conversion)
    if previous is None:
        return exact
    earlier, _ = _comparison(reading, spec, period, previous, rows)
    total, conversion = _share_bases(reading, spec, previous)
    return dataclasses.replace(exact, comparison=earlier, comparison_total=total,
                               comparison_conversion_total=conversion)


def _validate(spec: QuerySpec, context: SiteContext) -> None:
    goal_filtered = _goal_filtered(spec.filters)
    for index, name in enumerate(spec.metrics):
        if name in ("conversion_rate", "group_conversion_rate") \
                and "event:goal" not in spec.dimensions and not goal_filtered:
            raise InvalidField(f"{name} needs the event:goal dimension or a goal filter",
                               f"metrics[{index}]")
        if name == "percentage" and not any(not d.startswith("time:") for d in spec.dimensions):
            raise InvalidField("percentage needs a dimension other than time",
                               f"metrics[{index}]")


def _goal_filtered(filters: tuple[Filter, ...]) -> bool:
    """A goal filter outside has_done and has_not_done (those only choose visits)."""
    return any(item.dimension == "event:goal" if isinstance(item, Condition)
               else item.operator not in BEHAVIORAL_OPERATORS and _goal_filtered(item.children)
               for item in filters)


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


def _aggregate(store: Store, built: BuiltQuery, chosen: Plan) -> list[Row]:
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


def _result(spec: QuerySpec, row: Row, bases: dict[str, float]) -> dict[str, Any]:
    dimensions, parts = row
    return {"dimensions": dimensions, "metrics": _values(spec, parts, bases)}


def _values(spec: QuerySpec, parts: dict[str, float],
            bases: dict[str, float]) -> list[Any]:
    """The metrics of a row; a row with no counts at all has Plausible's empty values."""
    if not parts:
        return [default_value(name) for name in spec.metrics]
    return [metric_value(name, parts, base_of(name, parts, bases)) for name in spec.metrics]


def _bases(reading: _Reading, spec: QuerySpec, period: DateRange) -> dict[str, float]:
    """The period's visitors each share metric divides by: all of the query's filters for
    percentage, none of its top-level goal and custom property filters for conversion_rate
    (Plausible's bases)."""
    bases = {}
    if "percentage" in spec.metrics:
        bases["percentage"] = _visitors(reading, spec, period, spec.filters)
    if "conversion_rate" in spec.metrics:
        bases["conversion_rate"] = _visitors(reading, spec, period,
                                             without_conversion_filters(spec.filters))
    return bases


def _share_bases(reading: _Reading, spec: QuerySpec,
                 period: DateRange) -> tuple[float | None, float | None]:
    """A share token's bases before release: the period's visitors (percentage's, or the
    conversion rate's when it is the only one asked) and, with both, the conversion
    rate's apart."""
    bases = _bases(reading, spec, period)
    if "percentage" in bases:
        return bases["percentage"], bases.get("conversion_rate")
    return bases.get("conversion_rate"), None


def _visitors(reading: _Reading, spec: QuerySpec, period: DateRange,
              filters: tuple[Filter, ...]) -> float:
    """Visitors of the whole period under ``filters``."""
    total_spec = dataclasses.replace(spec, metrics=("visitors",), dimensions=(),
                                     filters=filters, order_by=(), comparison=False)
    chosen = reading.plan(total_spec, period)
    rows = _aggregate(reading.store, build(total_spec, dataclasses.replace(reading.context, k=1),
                                           period, chosen, bounds=reading.bounds), chosen)
    return rows[0][1]["visitors"] if rows else 0.0


def _comparison(reading: _Reading, spec: QuerySpec, period: DateRange, previous: DateRange,
                rows: list[Row]) -> tuple[list[Row], dict[str, float]]:
    """For each of ``rows``, its dimensions and components in the compared period (time
    buckets paired by position; no components: no such row then), and that period's bases."""
    context = reading.context
    unpaged = dataclasses.replace(spec, comparison=False)
    bases = _bases(reading, spec, previous)
    found = _counted(reading, unpaged, previous, reading.plan(main_spec(unpaged), previous),
                     bases, paginate=False)
    earlier = {tuple(_moved(spec, dims, previous, period, context)): (dims, parts)
               for dims, parts in found}
    return [earlier.get(tuple(dims), (_moved(spec, dims, period, previous, context), {}))
            for dims, _ in rows], bases


def _add_comparison(spec: QuerySpec, earlier: list[Row], bases: dict[str, float],
                    results: list[dict[str, Any]]) -> None:
    for result, (dims, parts) in zip(results, earlier):
        metrics = _values(spec, parts, bases)
        result["comparison"] = {
            "dimensions": dims, "metrics": metrics,
            "change": [change(name, now_value, then_value) for name, now_value, then_value
                       in zip(spec.metrics, result["metrics"], metrics)]}
    if not spec.dimensions and not results:
        results.append({"dimensions": [], "metrics": [0 for _ in spec.metrics]})


def _every_bucket(spec: QuerySpec, rows: list[Row], period: DateRange,
                  timezone: str) -> list[Row]:
    """A compared time series has a row for every bucket, empty ones included (as
    Plausible's): each bucket has its comparison, even where the range has nothing."""
    if len(spec.dimensions) != 1 or not spec.dimensions[0].startswith("time:"):
        return rows
    labels = bucket_labels(spec.dimensions[0], period, timezone)
    found = {dims[0] for dims, _ in rows}
    empty: list[Row] = [([label], {}) for label in labels if label not in found]
    if spec.order_by:
        return rows + empty  # after the rows ordered as asked, as Plausible adds them
    position = {label: index for index, label in enumerate(labels)}
    return sorted(rows + empty, key=lambda row: position.get(row[0][0], len(labels)))


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

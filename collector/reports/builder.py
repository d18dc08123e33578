"""From a validated ``QuerySpec`` to one SQL statement with bound parameters only.

The plan picks the source: a rollup when it can answer (no filters, one rollup
dimension, an hour-aligned range, and visitors read from a sample: rollups hold
exact sums but only 1/16 and 1/256 visitor samples), else the raw ``events`` or
``visits`` table. Filters on the other level become visit-id membership
tests (``visit IN (SELECT visit FROM ...)``), so event and visit filters combine
freely under and/or/not. Identifiers come from the allow-lists; every value a
request carries is a ``{pN:Type}`` placeholder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from collector.errors import InvalidField
from collector.reports.contribution import PREFIX as BOUNDED_PREFIX
from collector.reports.contribution import VISITOR as BOUNDED_VISITOR
from collector.reports.contribution import ContributionBounds, bounded_sql
from collector.reports.dates import DateRange, is_hour_aligned
from collector.reports.dimensions import (
    EVENTS,
    EVENTS_ROLLUP,
    TIME_COLUMNS,
    VISITS,
    VISITS_ROLLUP,
    dimension,
    moment_sql,
    raw_table_of,
    rollup_key,
    shown_sql,
    value_sql,
)
from collector.reports.engagement import WITH_OTHER_EVENTS, check_engagement, reads_engagement
from collector.reports.goals import Goal, condition_sql, goal_dimension_sql
from collector.reports.metrics import (
    COMPONENT_SQL,
    ENGAGEMENT_ORDER_SQL,
    METRICS,
    component_sql,
    needs_visit_table,
)
from collector.reports.params import Parameters
from collector.reports.patterns import check_pattern
from collector.reports.request import (
    BEHAVIORAL_OPERATORS,
    Condition,
    Filter,
    Logical,
    QuerySpec,
    leaves,
)
from collector.reports.revenue import counted_sql, uses_revenue
from collector.reports.thresholds import folded_sql
from collector.schema import rollup_dimensions
from collector.storage.rollups import events_hours, visits_dimension_hours

UTC_NAMES = ("UTC", "Etc/UTC", "Etc/GMT", "GMT", "Zulu", "Etc/Zulu", "Universal")
DAY_SECONDS = 86400

# Membership subqueries look this far around the range: a visit that started
# before the range can have events in it, and one that started in it can end after.
VISIT_SPAN_MARGIN = timedelta(days=1)


# The visit's last page changes within a visit: only the collapsed visits (FINAL) have it.
EXIT_DIMENSIONS = frozenset({"visit:exit_page", "visit:exit_page_hostname"})


@dataclass(frozen=True)
class SiteContext:
    site: str
    timezone: str = "UTC"
    goals: tuple[Goal, ...] = ()
    k: int = 1


@dataclass(frozen=True)
class Plan:
    level: str  # event | visit
    source: str  # events | visits | events_rollup | visits_rollup
    final: bool = False  # read collapsed visits (exit pages change within a visit)
    sample: float | None = None  # raw tables: SAMPLE ratio, every metric scaled
    visitor_sample: int = 1  # distinct counts from a 1/N visitor sample, sums stay exact
    daily: bool = False  # rollups: whole UTC days from the daily table, edge hours apart

    @property
    def is_rollup(self) -> bool:
        return self.source in (EVENTS_ROLLUP, VISITS_ROLLUP)


@dataclass(frozen=True)
class BuiltQuery:
    sql: str
    parameters: dict[str, object]
    dimensions: tuple[str, ...]
    components: tuple[str, ...]


def query_level(spec: QuerySpec) -> str:
    """event or visit: the raw table the query's rows are counted in."""
    levels = {dimension(name).level for name in spec.dimensions} - {"time"}
    if len(levels) > 1:
        index = next(i for i, name in enumerate(spec.dimensions) if name.startswith("event:"))
        raise InvalidField("event and visit dimensions cannot be combined",
                           f"dimensions[{index}]")
    if levels:
        level = levels.pop()
    elif needs_visit_table(spec.metrics):
        level = "visit"
    elif uses_revenue(spec.metrics):  # revenue is stored on events only
        level = "event"
    else:
        level = "event" if any(leaf.dimension.startswith("event:")
                               for leaf in leaves(spec.filters)) else "visit"
    if level == "event":
        for index, name in enumerate(spec.metrics):
            if needs_visit_table((name,)):
                raise InvalidField(f"{name} is a visit metric; it cannot be broken down by "
                                   "event dimensions", f"metrics[{index}]")
    for index, name in enumerate(spec.metrics):
        if level == "visit" and uses_revenue((name,)):
            raise InvalidField(f"{name} is an event metric (revenue is stored on events): "
                               "break it down by event dimensions or time, without visit "
                               "metrics", f"metrics[{index}]")
    check_engagement(spec, level)
    for index, item in enumerate(spec.filters):
        _check_behavioral(item, f"filters[{index}]")
    return level


def _check_behavioral(item: Filter, path: str, inside: bool = False) -> None:
    """has_done and has_not_done hold conditions on event dimensions, and no other of them
    (Plausible's rule: they test a visit's events). ``path``: where ``item`` is."""
    if isinstance(item, Condition):
        if inside and not item.dimension.startswith("event:"):
            raise InvalidField("has_done and has_not_done take filters on event dimensions "
                               "only", item.path)
        return
    behavioral = item.operator in BEHAVIORAL_OPERATORS
    if behavioral and inside:
        raise InvalidField("has_done and has_not_done cannot be nested", path)
    if item.operator in ("and", "or"):
        for index, child in enumerate(item.children):
            _check_behavioral(child, f"{path}[1][{index}]", inside or behavioral)
    else:  # not, has_done, has_not_done: their one filter is at [1]
        _check_behavioral(item.children[0], f"{path}[1]", inside or behavioral)


def entry_page_filters(spec: QuerySpec) -> list[Condition]:
    """The top-level event:page filters, read as filters on the entry page by the bounce
    rate of a visit query (Plausible: the bounce rate of the visits entering there)."""
    return [item for item in spec.filters
            if isinstance(item, Condition) and item.dimension == "event:page"]


def spec_components(spec: QuerySpec, source: str) -> tuple[str, ...]:
    """The components ``spec`` reads from ``source``: ``components_of`` with the entries
    a page-filtered bounce rate divides by."""
    entries = source == VISITS and "bounce_rate" in spec.metrics \
        and bool(entry_page_filters(spec))
    return components_of(spec.metrics, source, entries)


def plan(spec: QuerySpec, period: DateRange, force_raw: bool = False,
         timezone: str = "UTC") -> Plan:
    """The source that answers ``spec``; ``force_raw`` when visitors must be exact."""
    level = query_level(spec)
    named = [name for name in spec.dimensions if not name.startswith("time:")]
    rollup_ready = (not force_raw and not spec.filters and len(named) <= 1
                    and not uses_revenue(spec.metrics)  # no rollup holds revenue
                    and not reads_engagement(spec.metrics)  # nor engagement
                    and all(dimension(name).in_rollup for name in named)
                    and is_hour_aligned(period.start) and is_hour_aligned(period.end))
    if rollup_ready:
        time_names = set(spec.dimensions) - set(named)
        # UTC days are local days only in UTC; elsewhere day buckets need the hours.
        daily = (_whole_utc_days(period) is not None
                 and (not time_names or (timezone in UTC_NAMES and "time:hour" not in time_names)))
        # Only the visits' site totals have an hourly table; the rest is daily.
        if daily or (level == "visit" and not named):
            return Plan(level, EVENTS_ROLLUP if level == "event" else VISITS_ROLLUP,
                        daily=daily)
    uses_exit_page = any(name in EXIT_DIMENSIONS for name in spec.dimensions) or any(
        leaf.dimension in EXIT_DIMENSIONS for leaf in leaves(spec.filters))
    return Plan(level, raw_table_of(level), final=level == "visit" and uses_exit_page)


def components_of(metrics: tuple[str, ...], source: str,
                  entries: bool = False) -> tuple[str, ...]:
    # Visitors always: k-threshold folding and percentages are based on them.
    wanted = {"visitors"} | {part for name in metrics for part in METRICS[name]}
    if entries:
        wanted.add("entries")
    return tuple(name for name in COMPONENT_SQL[source] if name in wanted)


def build(spec: QuerySpec, context: SiteContext, period: DateRange, chosen: Plan,
          paginate: bool = True, bounds: ContributionBounds | None = None) -> BuiltQuery:
    """``bounds``: count each visitor's clipped contribution (share tokens, contribution.py)."""
    params = Parameters()
    components = spec_components(spec, chosen.source)
    aliases = [f"d{index}" for index in range(len(spec.dimensions))]
    fold = context.k > 1 and any(not name.startswith("time:") for name in spec.dimensions)
    prefix = "inner_" if fold else ""
    grouped = BOUNDED_PREFIX if bounds else prefix
    goal_sql = goal_dimension_sql(list(context.goals), params) \
        if "event:goal" in spec.dimensions else ""
    revenue = counted_sql(context.goals, params) if uses_revenue(spec.metrics) else "0"
    engaged = reads_engagement(spec.metrics)  # the engagement events are read too
    entry = _entry_sql(spec, context, period, params) if "entries" in components else "1"
    selected = [
        shown_sql(name, value_sql(name, chosen.source, params, context.timezone, goal_sql,
                                  period.first_day)) + f" AS {grouped}{alias}"
        for name, alias in zip(spec.dimensions, aliases)]
    selected += [
        f"{component_sql(chosen.source, part, chosen.visitor_sample, revenue, engaged, entry)}"
        f" AS {grouped}c_{part}"
        for part in components]
    keys = [grouped + alias for alias in aliases]
    if bounds:
        selected.append(f"visitor AS {BOUNDED_VISITOR}")
        keys.append(BOUNDED_VISITOR)
    breakdown = next((name for name in spec.dimensions if not name.startswith("time:")), None)
    source = _from(chosen, period, params, context.site, breakdown)
    sql = (f"SELECT {', '.join(selected)} FROM {source} "
           f"WHERE {_where(spec, context, period, chosen, params, engaged)}")
    if keys:
        sql += f" GROUP BY {', '.join(keys)}"
    if keys and engaged:  # a row of engagement events alone: its pageview is not in range
        sql += f" HAVING {WITH_OTHER_EVENTS}"
    if bounds:
        sql = bounded_sql(sql, aliases, components, prefix, bounds)
    if fold:
        time_alias = next((alias for name, alias in zip(spec.dimensions, aliases)
                           if name.startswith("time:")), None)
        named = [alias for name, alias in zip(spec.dimensions, aliases)
                 if not name.startswith("time:")]
        sql = folded_sql(sql, named, time_alias, [f"c_{part}" for part in components],
                         params.bind(context.k, "UInt32"))
    if aliases:
        sql += f" ORDER BY {_order(spec, aliases, components)}"
        if paginate:
            sql += (f" LIMIT {params.bind(spec.limit, 'UInt32')}"
                    f" OFFSET {params.bind(spec.offset, 'UInt32')}")
    return BuiltQuery(sql, params.values, spec.dimensions, components)


def _entry_sql(spec: QuerySpec, context: SiteContext, period: DateRange,
               params: Parameters) -> str:
    """True for a visit entering on a page the top-level event:page filters name."""
    tests = [_filter_sql(dataclasses.replace(item, dimension="visit:entry_page"), "visit",
                         VISITS, context, period, params) for item in entry_page_filters(spec)]
    return " AND ".join(f"({test})" for test in tests)


def _whole_utc_days(period: DateRange) -> tuple[int, int] | None:
    """First and end (exclusive) UTC midnight of the whole UTC days in the period, if any."""
    start, end = int(period.start.timestamp()), int(period.end.timestamp())
    first = -(-start // DAY_SECONDS) * DAY_SECONDS
    last = end // DAY_SECONDS * DAY_SECONDS
    return (first, last) if first < last else None


def _rollup_union(chosen: Plan, period: DateRange, params: Parameters, site: str,
                  named: str | None) -> str:
    """Whole UTC days from the daily rollup, the hours at either edge apart."""
    days = _whole_utc_days(period)
    assert days is not None
    start, end = int(period.start.timestamp()), int(period.end.timestamp())
    first, last = (params.bind(moment, "UInt32") for moment in days)
    edges = [params.bind(moment, "UInt32") for moment in (start, end)]
    daily = (f"SELECT * FROM {chosen.source}_daily WHERE hour >= toDateTime({first}, 'UTC') "
             f"AND hour < toDateTime({last}, 'UTC')")
    if (start, end) == days:  # whole UTC days only: nothing to add at the edges
        return f"({daily}) AS rollup"

    def at_edges(column: str) -> str:
        return (f"(({column} >= {moment_sql(column, edges[0])} "
                f"AND {column} < {moment_sql(column, first)}) "
                f"OR ({column} >= {moment_sql(column, last)} "
                f"AND {column} < {moment_sql(column, edges[1])}))")

    hourly = _hourly_rows(chosen, at_edges, params.bind(site), named)
    return f"({daily} UNION ALL {hourly}) AS rollup"


def _hourly_rows(chosen: Plan, during: Callable[[str], str], site: str,
                 named: str | None) -> str:
    """Rollup-shaped rows for the hours ``during(time column)`` selects.

    The site totals come from the hourly table; any other dimension is rolled up
    here from the raw rows with the aggregates of its daily view
    (``collector.storage.rollups``): cheap for the few hours at the edges of a range.
    """
    if chosen.source == VISITS_ROLLUP and named is None:
        return f"SELECT * FROM {VISITS_ROLLUP} WHERE site = {site} AND {during('hour')}"
    if chosen.source == VISITS_ROLLUP and named is not None:
        return visits_dimension_hours(rollup_key(named), site, during("start_time"))
    return events_hours(rollup_dimensions("events"), site, during("timestamp"))


def _from(chosen: Plan, period: DateRange, params: Parameters, site: str,
          named: str | None) -> str:
    if chosen.daily:
        return _rollup_union(chosen, period, params, site, named)
    if chosen.is_rollup:  # the site totals of a range that is not made of whole UTC days
        start, end = (params.bind(int(moment.timestamp()), "UInt32")
                      for moment in (period.start, period.end))
        return "(" + _hourly_rows(chosen, lambda column: (
            f"{column} >= {moment_sql(column, start)} AND {column} < {moment_sql(column, end)}"),
            params.bind(site), named) + ") AS rollup"
    text = chosen.source + (" FINAL" if chosen.final else "")
    if chosen.sample is not None:
        # The ratio is computed by the planner, never taken from a request.
        text += f" SAMPLE {float(chosen.sample)!r}"
    return text


def _where(spec: QuerySpec, context: SiteContext, period: DateRange, chosen: Plan,
           params: Parameters, engagement: bool = False) -> str:
    parts = _range_sql(chosen.source, context.site, period.start.timestamp(),
                       period.end.timestamp(), params, engagement)
    if chosen.source == VISITS_ROLLUP:
        named = [name for name in spec.dimensions if not name.startswith("time:")]
        parts.append(f"dimension = {params.bind(rollup_key(named[0]) if named else '')}")
    for item in spec.filters:
        parts.append(_filter_sql(item, chosen.level, chosen.source, context, period, params,
                                 chosen.sample))
    return " AND ".join(parts)


def _range_sql(source: str, site: str, start: float, end: float,
               params: Parameters, engagement: bool = False) -> list[str]:
    column = TIME_COLUMNS[source]
    parts = [f"site = {params.bind(site)}",
             f"{column} >= {moment_sql(column, params.bind(int(start), 'UInt32'))}",
             f"{column} < {moment_sql(column, params.bind(int(end), 'UInt32'))}"]
    if source == EVENTS and not engagement:
        # Engagement events refine visit durations; they are not events of their own
        # (only scroll_depth and time_on_page read them: collector.reports.engagement).
        parts.append("name != 'engagement'")
    return parts


def _filter_sql(item: Filter, level: str, source: str, context: SiteContext,
                period: DateRange, params: Parameters, sample: float | None = None) -> str:
    if isinstance(item, Logical) and item.operator in BEHAVIORAL_OPERATORS:
        done = _done_sql(item.children[0], context, period, params, sample)
        return done if item.operator == "has_done" else f"NOT ({done})"
    if isinstance(item, Logical):
        inner = [_filter_sql(child, level, source, context, period, params, sample)
                 for child in item.children]
        if item.operator == "not":
            return f"NOT ({inner[0]})"
        return "(" + f" {item.operator.upper()} ".join(inner) + ")"
    leaf_level = dimension(item.dimension).level
    if leaf_level != level:
        return _membership_sql(item, leaf_level, context, period, params, sample)
    if item.dimension == "event:goal":
        return _goal_condition(item, context, params)
    expression = shown_sql(item.dimension,
                           value_sql(item.dimension, source, params, context.timezone))
    return _operator_sql(item, expression, params)


def _membership_sql(item: Condition, leaf_level: str, context: SiteContext,
                    period: DateRange, params: Parameters, sample: float | None) -> str:
    table = raw_table_of(leaf_level)
    final = " FINAL" if item.dimension in EXIT_DIMENSIONS else ""
    if sample is not None:
        # Both raw tables sample by visitor: the outer query's visits are all in the same
        # sample of the other table, so the lookup reads only that sample too.
        final += f" SAMPLE {float(sample)!r}"
    start = (period.start - VISIT_SPAN_MARGIN).timestamp()
    end = (period.end + VISIT_SPAN_MARGIN).timestamp()
    where = _range_sql(table, context.site, start, end, params)
    where.append(_filter_sql(item, leaf_level, table, context, period, params))
    return f"visit IN (SELECT visit FROM {table}{final} WHERE {' AND '.join(where)})"


def _done_sql(item: Filter, context: SiteContext, period: DateRange, params: Parameters,
              sample: float | None) -> str:
    """True for the rows of visits with an event in the period that ``item`` matches
    (Plausible's has_done: the same events table, the query's range, any level)."""
    where = _range_sql(EVENTS, context.site, period.start.timestamp(),
                       period.end.timestamp(), params)
    where.append(_filter_sql(item, "event", EVENTS, context, period, params))
    # Same visitor sample as the outer query: both raw tables sample by visitor.
    sampled = f" SAMPLE {float(sample)!r}" if sample is not None else ""
    return (f"visit IN (SELECT visit FROM {EVENTS}{sampled} WHERE {' AND '.join(where)} "
            "AND visit != 0)")


def _operator_sql(item: Condition, expression: str, params: Parameters) -> str:
    values = list(item.values)
    if not item.case_sensitive:  # {"case_sensitive": false}: letters match in either case
        if item.operator.startswith("matches"):
            values = [f"(?i){pattern}" for pattern in values]
        else:
            expression, values = f"lowerUTF8({expression})", [value.lower() for value in values]
    if item.operator in ("is", "is_not"):
        test = f"{expression} IN {params.bind(values, 'Array(String)')}"
    elif item.operator in ("contains", "contains_not"):
        test = f"multiSearchAny({expression}, {params.bind(values, 'Array(String)')})"
    else:
        _check_patterns(item)
        test = "(" + " OR ".join(f"match({expression}, {params.bind(pattern)})"
                                 for pattern in values) + ")"
    return f"NOT ({test})" if item.operator.endswith("_not") else test


def _goal_condition(item: Condition, context: SiteContext, params: Parameters) -> str:
    if item.operator in ("matches", "matches_not"):
        test = _goal_match_sql(item, context, params)
    else:
        test = " OR ".join(condition_sql(goal, params)
                           for goal in _named_goals(item, context)) or "0"
    return f"NOT ({test})" if item.operator.endswith("_not") else f"({test})"


def _named_goals(item: Condition, context: SiteContext) -> list[Goal]:
    """The goals an is or contains filter names."""
    fold = (lambda text: text) if item.case_sensitive else str.casefold
    if item.operator in ("contains", "contains_not"):
        return [goal for goal in context.goals
                if any(fold(v) in fold(goal.name) for v in item.values)]
    by_name = {fold(goal.name): goal for goal in context.goals}
    for index, name in enumerate(item.values):
        if fold(name) not in by_name:
            raise InvalidField(f"the site has no goal named {name!r}", f"{item.path}[2][{index}]")
    return [by_name[fold(name)] for name in item.values]


def _goal_match_sql(item: Condition, context: SiteContext, params: Parameters) -> str:
    """True for events completing a goal whose name matches any of the patterns.

    The names are matched by ClickHouse (RE2, as for every other dimension), never by
    Python's backtracking ``re``; name and patterns being constants, it does so once.
    """
    _check_patterns(item)
    patterns = params.bind(list(item.values), "Array(String)")
    return " OR ".join(
        f"(arrayExists(pattern -> match({params.bind(goal.name)}, pattern), {patterns}) "
        f"AND {condition_sql(goal, params)})" for goal in context.goals) or "0"


def _check_patterns(item: Condition) -> None:
    for index, pattern in enumerate(item.values):
        check_pattern(pattern, f"{item.path}[2][{index}]")


def _order(spec: QuerySpec, aliases: list[str], components: tuple[str, ...]) -> str:
    by_dimension = dict(zip(spec.dimensions, aliases))
    terms = []
    for name, direction in spec.order_by:
        expression = by_dimension.get(name) or _metric_order_sql(name, components)
        terms.append(f"{expression} {direction.upper()}")
    if not spec.order_by:  # Plausible's default: time first, then the first metric, descending
        terms += [f"{alias} ASC" for name, alias in by_dimension.items()
                  if name.startswith("time:")]
        terms.append(f"{_metric_order_sql(spec.metrics[0], components)} DESC")
    terms += [f"{alias} ASC" for alias in aliases]
    return ", ".join(terms)


def _metric_order_sql(name: str, components: tuple[str, ...] = ()) -> str:
    if name in ENGAGEMENT_ORDER_SQL:
        return ENGAGEMENT_ORDER_SQL[name]
    if name == "bounce_rate" and "entries" in components:
        return "if(c_entries = 0, 0, c_bounces / c_entries)"
    ratios = {"views_per_visit": "c_pageviews", "bounce_rate": "c_bounces",
              "visit_duration": "c_duration"}
    if name in ratios:
        return f"if(c_visits = 0, 0, {ratios[name]} / c_visits)"
    if name in ("percentage", "conversion_rate", "group_conversion_rate"):
        return "c_visitors"
    if name == "total_revenue":
        return "c_revenue"
    if name == "average_revenue":
        return "if(c_revenue_events = 0, 0, c_revenue / c_revenue_events)"
    return f"c_{name}"

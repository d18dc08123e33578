"""Report metrics: the additive components SQL computes, and the metrics derived from them.

Queries only ever aggregate additive components (visitors, visits, pageviews,
events, bounces, duration; revenue; engagement); rates are computed here from those
sums. That keeps one formula for raw tables, rollups, sampled queries and the
``(other)`` row of k-threshold folding, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.reports.dimensions import EVENTS, EVENTS_ROLLUP, VISITS, VISITS_ROLLUP

COMPONENTS = ("visitors", "visits", "pageviews", "events", "bounces", "duration")
# The engagement events a query reads: those of a visit (the tracker reports on pages
# it counted; one with no visit followed none).
_REPORTED = "name = 'engagement' AND visit != 0"
_ENGAGEMENT_MAXIMA = f"maxMapIf([visit], [scroll_depth], {_REPORTED})"

# Which components each metric needs; percentage and conversion_rate also need a total.
METRICS: dict[str, tuple[str, ...]] = {
    "visitors": ("visitors",),
    "visits": ("visits",),
    "pageviews": ("pageviews",),
    "views_per_visit": ("pageviews", "visits"),
    "bounce_rate": ("bounces", "visits"),
    "visit_duration": ("duration", "visits"),
    "events": ("events",),
    "conversion_rate": ("visitors",),
    "percentage": ("visitors",),
    "total_revenue": ("revenue",),
    "average_revenue": ("revenue", "revenue_events"),
    "scroll_depth": ("scroll", "engaged_visits"),
    "time_on_page": ("engaged_ms", "engaged_visits"),
}
# Read from raw events only: no rollup holds revenue (collector.reports.revenue).
REVENUE_METRICS = ("total_revenue", "average_revenue")
REVENUE_COMPONENTS = ("revenue", "revenue_events")
# Read from raw events only, where the query keeps the engagement events
# (collector.reports.engagement).
ENGAGEMENT_METRICS = ("scroll_depth", "time_on_page")

# Components each source can compute, as SQL over that source's columns.
COMPONENT_SQL: dict[str, dict[str, str]] = {
    EVENTS: {
        "visitors": "uniq(visitor)",
        "visits": "uniqIf(visit, visit != 0)",
        "pageviews": "countIf(name = 'pageview')",
        "events": "count()",
        # {revenue}: the test of an event whose revenue counts (collector.reports.revenue)
        "revenue": "sumIf(revenue_amount, {revenue}) / 1000000",
        "revenue_events": "countIf({revenue})",
        # Per visit the deepest scroll reported, summed over the visits that reported one
        # (the map keeps each visit's maximum; its keys are those visits).
        "scroll": f"arraySum({_ENGAGEMENT_MAXIMA}.2)",
        "engaged_visits": f"length({_ENGAGEMENT_MAXIMA}.1)",
        "engaged_ms": f"sumIf(engaged_ms, {_REPORTED})",
    },
    VISITS: {
        "visitors": "uniq(visitor)",
        "visits": "sum(sign)",
        "pageviews": "sum(sign * pageviews)",
        "events": "sum(sign * events)",
        "bounces": "sum(sign * is_bounce)",
        "duration": "sum(sign * duration)",
    },
    EVENTS_ROLLUP: {
        "visitors": "uniqMerge(visitors_s{n}) * {n}",
        "visits": "uniqMerge(visits_s{n}) * {n}",
        "pageviews": "sumIf(events, name = 'pageview')",
        "events": "sum(events)",
    },
    VISITS_ROLLUP: {
        "visitors": "uniqMerge(visitors_s{n}) * {n}",
        "visits": "sum(visits)",
        "pageviews": "sum(pageviews)",
        "events": "sum(events)",
        "bounces": "sum(bounces)",
        "duration": "sum(duration)",
    },
}


# A query that keeps the engagement events (they are in no other query: they refine
# visits, they are not events of their own) counts everything else without them.
_WITHOUT_ENGAGEMENT = {
    "visitors": "uniqIf(visitor, name != 'engagement')",
    "visits": "uniqIf(visit, visit != 0 AND name != 'engagement')",
    "events": "countIf(name != 'engagement')",
}
_SAMPLED_WITHOUT_ENGAGEMENT = {
    "visitors": "uniqIf(visitor, visitor < {bound} AND name != 'engagement') * {n}",
    "visits": "uniqIf(visit, visit != 0 AND visitor < {bound} AND name != 'engagement') * {n}",
}

# Distinct counts read from a 1/n visitor sample (visitor < 2^64 / n, the rows of
# `SAMPLE 1/n`), scaled by n. Rollups hold only these samples, for n = 16 and 256.
SAMPLED_SQL: dict[str, dict[str, str]] = {
    EVENTS: {"visitors": "uniqIf(visitor, visitor < {bound}) * {n}",
             "visits": "uniqIf(visit, visit != 0 AND visitor < {bound}) * {n}"},
    VISITS: {"visitors": "uniqIf(visitor, visitor < {bound}) * {n}"},
    EVENTS_ROLLUP: {"visitors": COMPONENT_SQL[EVENTS_ROLLUP]["visitors"],
                    "visits": COMPONENT_SQL[EVENTS_ROLLUP]["visits"]},
    VISITS_ROLLUP: {"visitors": COMPONENT_SQL[VISITS_ROLLUP]["visitors"]},
}
VISITOR_SAMPLES = (16, 256)


def component_sql(source: str, part: str, visitor_sample: int = 1, revenue: str = "0",
                  engagement: bool = False) -> str:
    """SQL of one component; distinct counts from a 1/16 or 1/256 visitor sample when asked;
    ``revenue`` is the SQL test of the events whose revenue is counted; ``engagement``:
    the raw events read include the engagement events."""
    if part in REVENUE_COMPONENTS:
        return COMPONENT_SQL[source][part].format(revenue=revenue)
    counted = COMPONENT_SQL[source][part]
    sampled = SAMPLED_SQL[source].get(part)
    if engagement and source == EVENTS:
        counted = _WITHOUT_ENGAGEMENT.get(part, counted)
        sampled = _SAMPLED_WITHOUT_ENGAGEMENT.get(part, sampled)
    if sampled is None:
        return counted
    if visitor_sample == 1 and source in (EVENTS, VISITS):
        return counted
    if visitor_sample not in VISITOR_SAMPLES:
        raise ValueError(f"{source} has no 1/{visitor_sample} visitor sample of {part}")
    return sampled.format(n=visitor_sample, bound=2 ** 64 // visitor_sample)


# How the builder orders by an engagement metric: its ratio, 0 for rows without one.
ENGAGEMENT_ORDER_SQL = {
    "scroll_depth": "if(c_engaged_visits = 0, 0, c_scroll / c_engaged_visits)",
    "time_on_page": "if(c_engaged_visits = 0, 0, c_engaged_ms / c_engaged_visits)",
}

# Rates are differences in percentage points in comparisons; counts are relative changes.
RATE_METRICS = ("bounce_rate", "conversion_rate", "percentage")


def needs_visit_table(metrics: tuple[str, ...]) -> bool:
    """True when a metric needs components only the visits table has."""
    return any(part in ("bounces", "duration") for name in metrics for part in METRICS[name])


def metric_value(name: str, parts: Mapping[str, float],
                 total_visitors: float) -> float | int | None:
    """The value of metric ``name`` from aggregated components; None: nothing to average
    (the engagement metrics of a row no visit reported engagement for, as on Plausible)."""
    visits = parts.get("visits", 0)
    if name == "views_per_visit":
        return round(parts["pageviews"] / visits, 2) if visits else 0.0
    if name == "bounce_rate":
        return round(100 * parts["bounces"] / visits) if visits else 0
    if name == "visit_duration":
        return round(parts["duration"] / visits) if visits else 0
    if name == "percentage":
        return round(100 * parts["visitors"] / total_visitors, 1) if total_visitors else 0.0
    if name == "conversion_rate":
        return round(100 * parts["visitors"] / total_visitors, 2) if total_visitors else 0.0
    if name in REVENUE_METRICS:  # an amount; collector.reports.revenue gives its currency
        revenue, counted = parts.get("revenue", 0.0), parts.get("revenue_events", 0.0)
        if name == "average_revenue":
            return round(revenue / counted, 3) if counted else 0.0
        return round(revenue, 3)
    if name in ENGAGEMENT_METRICS:
        reported = parts.get("engaged_visits", 0.0)
        total = parts.get("scroll", 0.0) if name == "scroll_depth" \
            else parts.get("engaged_ms", 0.0) / 1000
        return round(total / reported) if reported else None
    return int(round(parts[name]))


def change(name: str, current: float | None, previous: float | None) -> float | int | None:
    """Plausible's ``change``: percent change for counts, point difference for rates; none
    when either side has no value."""
    if current is None or previous is None:
        return None
    if name in RATE_METRICS:
        return round(current - previous, 1)
    if previous == 0:
        return None if current == 0 else 100
    return round(100 * (current - previous) / previous)

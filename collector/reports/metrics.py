"""Report metrics: the additive components SQL computes, and the metrics derived from them.

Queries only ever aggregate six components (visitors, visits, pageviews,
events, bounces, duration); rates are computed here from those sums. That keeps
one formula for raw tables, rollups, sampled queries and the ``(other)`` row of
k-threshold folding, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.reports.dimensions import EVENTS, EVENTS_ROLLUP, VISITS, VISITS_ROLLUP

COMPONENTS = ("visitors", "visits", "pageviews", "events", "bounces", "duration")

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
}
# Read from raw events only: no rollup holds revenue (collector.reports.revenue).
REVENUE_METRICS = ("total_revenue", "average_revenue")
REVENUE_COMPONENTS = ("revenue", "revenue_events")

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


def component_sql(source: str, part: str, visitor_sample: int = 1, revenue: str = "0") -> str:
    """SQL of one component; distinct counts from a 1/16 or 1/256 visitor sample when asked;
    ``revenue`` is the SQL test of the events whose revenue is counted."""
    if part in REVENUE_COMPONENTS:
        return COMPONENT_SQL[source][part].format(revenue=revenue)
    sampled = SAMPLED_SQL[source].get(part)
    if sampled is None:
        return COMPONENT_SQL[source][part]
    if visitor_sample == 1 and source in (EVENTS, VISITS):
        return COMPONENT_SQL[source][part]
    if visitor_sample not in VISITOR_SAMPLES:
        raise ValueError(f"{source} has no 1/{visitor_sample} visitor sample of {part}")
    return sampled.format(n=visitor_sample, bound=2 ** 64 // visitor_sample)


# Rates are differences in percentage points in comparisons; counts are relative changes.
RATE_METRICS = ("bounce_rate", "conversion_rate", "percentage")


def needs_visit_table(metrics: tuple[str, ...]) -> bool:
    """True when a metric needs components only the visits table has."""
    return any(part in ("bounces", "duration") for name in metrics for part in METRICS[name])


def metric_value(name: str, parts: Mapping[str, float], total_visitors: float) -> float | int:
    """The value of metric ``name`` from aggregated components."""
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
    return int(round(parts[name]))


def change(name: str, current: float, previous: float) -> float | int | None:
    """Plausible's ``change``: percent change for counts, point difference for rates."""
    if name in RATE_METRICS:
        return round(current - previous, 1)
    if previous == 0:
        return None if current == 0 else 100
    return round(100 * (current - previous) / previous)

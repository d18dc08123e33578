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
    # Converting visitors over the visitors of the row's own group (a second count of the
    # group without its goal filters: collector.reports.group_rates).
    "group_conversion_rate": ("visitors",),
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

# Under a top-level event:page filter a visit's bounce counts only when it entered on a
# matching page (Plausible's bounce rate of a page): {entry} is that test on entry_page,
# and ``entries`` the visits that pass it, the bounce rate's base.
ENTRY_COMPONENTS = ("entries",)

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
        "bounces": "sumIf(sign * is_bounce, {entry})",
        "entries": "sumIf(sign, {entry})",
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
                  engagement: bool = False, entry: str = "1") -> str:
    """SQL of one component; distinct counts from a 1/16 or 1/256 visitor sample when asked;
    ``revenue`` is the SQL test of the events whose revenue is counted; ``engagement``:
    the raw events read include the engagement events; ``entry``: the test of the visits
    whose bounces count (their entry page, under an event:page filter)."""
    if part in REVENUE_COMPONENTS:
        return COMPONENT_SQL[source][part].format(revenue=revenue)
    if source == VISITS and part in ("bounces", "entries"):
        return COMPONENT_SQL[source][part].format(entry=entry)
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


def needs_visit_table(metrics: tuple[str, ...]) -> bool:
    """True when a metric needs components only the visits table has."""
    return any(part in ("bounces", "duration") for name in metrics for part in METRICS[name])


def metric_value(name: str, parts: Mapping[str, float],
                 total_visitors: float) -> float | int | None:
    """The value of metric ``name`` from aggregated components; None: nothing to average
    (the engagement metrics of a row no visit reported engagement for, as on Plausible)."""
    # Each ratio is computed in Plausible's order (a / b * 100) and rounded as ClickHouse
    # rounds a float there (half to even: Python's round), so that ties agree.
    visits = parts.get("visits", 0)
    if name == "views_per_visit":
        return round(parts["pageviews"] / visits, 2) if visits else 0.0
    if name == "bounce_rate":
        entries = parts.get("entries", visits)  # entries: the visits entering on the page
        return round(parts["bounces"] / entries * 100) if entries else 0
    if name == "visit_duration" and "entry_duration" in parts:  # of the visits entering
        entries = parts.get("entries", 0)
        return round(parts["entry_duration"] / entries) if entries else 0
    if name == "visit_duration":
        return round(parts["duration"] / visits) if visits else 0
    if name == "percentage":
        return round(parts["visitors"] / total_visitors * 100, 1) if total_visitors else 0.0
    if name in ("conversion_rate", "group_conversion_rate"):
        # group_conversion_rate: ``total_visitors`` is the row's group (group_rates).
        return round(parts["visitors"] / total_visitors * 100, 1) if total_visitors else 0.0
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


# Metrics shown as decimals; Plausible's value for a row without counts is 0.0 for them.
_DECIMAL_METRICS = ("views_per_visit", "bounce_rate", "percentage", "conversion_rate",
                    "group_conversion_rate", *REVENUE_METRICS)
# Averages of nothing: null for a row without counts.
_AVERAGES = ("visit_duration", *ENGAGEMENT_METRICS)


def default_value(name: str) -> float | int | None:
    """Plausible's value of metric ``name`` for a row with no counts at all (an empty time
    bucket, a compared row the other period does not have)."""
    if name in _AVERAGES:
        return None
    return 0.0 if name in _DECIMAL_METRICS else 0


def change(name: str, current: float | None, previous: float | None) -> float | int | None:
    """Plausible v2's ``change``: points for the conversion rate (one decimal) and for the
    bounce rate (none from a zero rate), else percent: 0 from nothing to nothing, 100 from
    nothing to something; none when either side has no value."""
    if current is None or previous is None:
        return None
    if name == "conversion_rate":
        return half_away(current - previous, 1)
    if name == "bounce_rate":
        return current - previous if previous > 0 else None
    if previous == 0:
        return 100 if current > 0 else 0
    return int(half_away((current - previous) / previous * 100))


def half_away(value: float, digits: int = 0) -> float:
    """``value`` rounded half away from zero, as Elixir's ``round`` and ``Float.round``
    round (Python's round goes to even)."""
    scale = 10 ** digits
    whole = int(abs(value) * scale + 0.5)
    rounded = (whole if value >= 0 else -whole) / scale
    return rounded if digits else float(int(rounded))

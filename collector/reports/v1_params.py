"""Stats API v1 query parameters, read and checked as Plausible's v1 endpoints read them.

Periods are relative to ``date`` (default: today in the site's timezone), as in
Plausible's current release: ``day`` is that day, ``7d``/``30d`` the whole days
before it, ``month`` its calendar month, ``6mo``/``12mo`` the calendar months up to
and including its month, ``custom`` the two dates given in ``date``. The metric rules
are Plausible's (which metrics need a goal or page filter, which cannot be broken down
by an event property), so a v1 client gets its 400s where it got them before.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from collector.errors import InvalidField
from collector.reports.dates import report_day
from collector.reports.dimensions import PROPS_PREFIX, is_known_dimension
from collector.reports.metrics import METRICS
from collector.reports.v1_filters import filtered_dimensions, v2_filters

PERIODS = ("day", "7d", "30d", "month", "6mo", "12mo", "custom")
DEFAULT_PERIOD = "30d"
METRIC_NAMES = ("visitors", "visits", "pageviews", "views_per_visit", "bounce_rate",
                "visit_duration", "events", "conversion_rate", "time_on_page")
SESSION_METRICS = ("visits", "bounce_rate", "visit_duration", "views_per_visit")
# `date` is the interval's old name, still sent by older clients.
INTERVALS = {"day": "time:day", "date": "time:day", "month": "time:month"}
DEFAULT_INTERVALS = {"day": "time:hour", "6mo": "time:month", "12mo": "time:month"}
MAX_BREAKDOWN_LIMIT = 1000
DEFAULT_BREAKDOWN_LIMIT = 100
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_INTEGER = re.compile(r"[+-]?\d{1,12}")  # longer is out of range anyway


@dataclass(frozen=True)
class V1Query:
    """One v1 request: local days (inclusive), metrics, v2 filters and the endpoint's extras."""

    first_day: date
    last_day: date
    metrics: tuple[str, ...]
    filters: list[Any]
    compare: bool = False
    property: str | None = None  # breakdown only
    interval: str = "time:day"  # timeseries only: the v2 time dimension
    limit: int = DEFAULT_BREAKDOWN_LIMIT
    page: int = 1


def parse_v1_query(params: Mapping[str, str], endpoint: str, today: date) -> V1Query:
    """The query of a v1 ``endpoint`` (aggregate, timeseries or breakdown)."""
    period = params.get("period", DEFAULT_PERIOD)
    first_day, last_day = period_days(period, params.get("date"), today)
    prop = parse_property(params.get("property")) if endpoint == "breakdown" else None
    interval = parse_interval(params.get("interval"), period) \
        if endpoint == "timeseries" else "time:day"
    filters = v2_filters(params.get("filters"))
    metrics = parse_metrics(params.get("metrics"), prop, filtered_dimensions(filters))
    limit, page = parse_pagination(params) if endpoint == "breakdown" \
        else (DEFAULT_BREAKDOWN_LIMIT, 1)
    # Plausible compares aggregates and breakdowns only, and ignores any other value.
    compare = endpoint != "timeseries" and params.get("compare") == "previous_period"
    return V1Query(first_day, last_day, metrics, filters, compare, prop, interval, limit, page)


def period_days(period: str, date_param: str | None, today: date) -> tuple[date, date]:
    """The first and last local day of ``period`` relative to ``date_param`` (or ``today``)."""
    if period not in PERIODS:
        raise InvalidField(f"unknown period {period!r} (accepted: {', '.join(PERIODS)})",
                           "period")
    if period == "custom":
        return _custom_days(date_param)
    anchor = today if date_param is None else _day(date_param)
    if period == "day":
        return anchor, anchor
    if period in ("7d", "30d"):
        last = anchor - timedelta(days=1)
        return last - timedelta(days=int(period[:-1]) - 1), last
    month_end = anchor.replace(day=calendar.monthrange(anchor.year, anchor.month)[1])
    if period == "month":
        return anchor.replace(day=1), month_end
    year, month = divmod(anchor.year * 12 + anchor.month - int(period[:-2]), 12)
    return date(year, month + 1, 1), month_end


def parse_metrics(value: str | None, prop: str | None, filtered: set[str]) -> tuple[str, ...]:
    """The comma-separated metrics (default visitors), each allowed with this property and
    these filtered dimensions."""
    names = tuple(name.strip() for name in (value if value is not None else "visitors")
                  .split(","))
    if len(set(names)) != len(names):
        raise InvalidField("a metric is listed twice", "metrics")
    for name in names:
        _check_metric(name, prop, filtered)
    return names


def parse_interval(value: str | None, period: str) -> str:
    """The v2 time dimension of a timeseries: ``interval``, or the period's default."""
    if value is None:
        return DEFAULT_INTERVALS.get(period, "time:day")
    if value not in INTERVALS:
        raise InvalidField(f"unknown interval {value!r} (accepted: day, month)", "interval")
    return INTERVALS[value]


def parse_property(value: str | None) -> str:
    if not value:
        raise InvalidField("required: the property to break down by (event:page, "
                           "visit:source, event:props:<name>, ...)", "property")
    if not is_known_dimension(value) or value.startswith("time:"):
        raise InvalidField(f"unknown property {value!r}", "property")
    return value


def parse_pagination(params: Mapping[str, str]) -> tuple[int, int]:
    """``limit`` (1 to 1000, default 100) and ``page`` (from 1)."""
    limit = _integer(params.get("limit"), DEFAULT_BREAKDOWN_LIMIT)
    if limit is None or not 1 <= limit <= MAX_BREAKDOWN_LIMIT:
        raise InvalidField(f"must be a whole number from 1 to {MAX_BREAKDOWN_LIMIT}", "limit")
    page = _integer(params.get("page"), 1)
    if page is None or page < 1:
        raise InvalidField("must be a whole number from 1", "page")
    return limit, page


def event_only(dimension: str) -> bool:
    """A property of single events that visits do not have (their metrics make no sense)."""
    return dimension in ("event:name", "event:goal") or dimension.startswith(PROPS_PREFIX)


def _check_metric(name: str, prop: str | None, filtered: set[str]) -> None:
    if name not in METRIC_NAMES or name not in METRICS:
        available = ", ".join(known for known in METRIC_NAMES if known in METRICS)
        raise InvalidField(f"unknown metric {name!r} (available: {available})", "metrics")
    if name == "time_on_page":
        _check_time_on_page(prop, filtered)
    elif name == "conversion_rate" and prop != "event:goal" and "event:goal" not in filtered:
        raise InvalidField("conversion_rate needs an event:goal filter or the event:goal "
                           "property", "metrics")
    elif name == "views_per_visit" and "event:page" in filtered:
        raise InvalidField("views_per_visit cannot be combined with an event:page filter",
                           "metrics")
    elif name == "views_per_visit" and prop is not None:
        raise InvalidField("views_per_visit cannot be broken down", "metrics")
    if name in SESSION_METRICS:
        if prop is not None and event_only(prop):
            raise InvalidField(f"{name} is a visit metric: it cannot be broken down by {prop}",
                               "metrics")
        found = sorted(dimension for dimension in filtered if event_only(dimension))
        if found:
            raise InvalidField(f"{name} is a visit metric: it cannot be combined with a "
                               f"filter on {found[0]}", "metrics")


def _check_time_on_page(prop: str | None, filtered: set[str]) -> None:
    for dimension in ("event:goal", "event:name"):
        if dimension in filtered:
            raise InvalidField(f"time_on_page cannot be combined with a filter on {dimension}",
                               "metrics")
    if prop not in (None, "event:page"):
        raise InvalidField("time_on_page is broken down by event:page only", "metrics")
    if prop is None and "event:page" not in filtered:
        raise InvalidField("time_on_page needs an event:page filter or the event:page "
                           "property", "metrics")


def _custom_days(value: str | None) -> tuple[date, date]:
    if value is None:
        raise InvalidField("required with period=custom: two dates, as in "
                           "date=2021-01-01,2021-01-31", "date")
    parts = value.split(",")
    if len(parts) != 2:
        raise InvalidField("period=custom takes two dates joined by a comma, as in "
                           "2021-01-01,2021-01-31", "date")
    return _day(parts[0].strip()), _day(parts[1].strip())


def _day(text: str) -> date:
    if not _ISO_DATE.fullmatch(text):
        raise InvalidField(f"{text!r} is not a date (YYYY-MM-DD)", "date")
    return report_day(text, "date")


def _integer(value: str | None, default: int) -> int | None:
    if value is None:
        return default
    return int(value) if _INTEGER.fullmatch(value) else None

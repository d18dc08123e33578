"""Stats API v1: ``GET /api/v1/stats/aggregate``, ``/timeseries`` and ``/breakdown``.

Most integrations built for Plausible still call these. Each request's parameters
(``collector.reports.v1_params``, ``v1_filters``) become v2 queries that
``Reports.run`` answers with the caller's k-threshold, exactly as a v2 query would be;
the rows are then reshaped as v1 answers them. Two v1 figures need a second query: the
conversion rate of a timeseries bucket or of a breakdown row is that group's own
(converting visitors over the group's visitors, goal filters left out), and the bounce
rate and visit duration of a page are those of the visits that entered on it, as in
Plausible. ``GET /api/v1/stats/realtime/visitors`` lives with the v2 routes
(``collector.reports.api``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.errors import InvalidField
from collector.reports.api import NO_STORE, authorized_url_site
from collector.reports.dates import zone
from collector.reports.dimensions import PROPS_PREFIX, dimension
from collector.reports.metrics import half_away
from collector.reports.query import Report
from collector.reports.request import MAX_LIMIT, parse_query
from collector.reports.service import Caller, Reports
from collector.reports.v1_filters import NO_VALUE, filtered_dimensions, renamed
from collector.reports.v1_params import V1Query, parse_v1_query

# A breakdown by a version names the browser or system it belongs to.
_DIMENSIONS = {"visit:browser_version": ("visit:browser", "visit:browser_version"),
               "visit:os_version": ("visit:os", "visit:os_version")}
# Plausible leaves visits without these out of their breakdown instead of a blank row.
_BLANKS_LEFT_OUT = ("visit:country", "visit:region", "visit:city", "visit:entry_page",
                    "visit:exit_page", "visit:utm_medium", "visit:utm_source",
                    "visit:utm_campaign", "visit:utm_content", "visit:utm_term")
# Under an event:page filter or breakdown, these are those of the visits entering there.
_ENTRY_METRICS = ("bounce_rate", "visit_duration")
_ENTRY_PAGE = {"event:page": "visit:entry_page"}
# An empty timeseries bucket, as Plausible shows it; every other metric is 0.
_EMPTY_BUCKET: dict[str, Any] = {"visit_duration": None, "time_on_page": None,
                                 "views_per_visit": 0.0, "conversion_rate": 0.0}
# Where a v2 field's error points in a v1 request.
_V1_FIELDS = (("filters", "filters"), ("metrics", "metrics"), ("order_by", "metrics"),
              ("date_range", "date"), ("include", "date"), ("dimensions", "property"),
              ("pagination.limit", "limit"), ("pagination.offset", "page"))


def stats_v1_routes() -> list[Route]:
    return [Route("/api/v1/stats/aggregate", aggregate_endpoint, methods=["GET"]),
            Route("/api/v1/stats/timeseries", timeseries_endpoint, methods=["GET"]),
            Route("/api/v1/stats/breakdown", breakdown_endpoint, methods=["GET"])]


async def aggregate_endpoint(request: Request) -> Response:
    return await _respond(request, "aggregate", _aggregate)


async def timeseries_endpoint(request: Request) -> Response:
    return await _respond(request, "timeseries", _timeseries)


async def breakdown_endpoint(request: Request) -> Response:
    return await _respond(request, "breakdown", _breakdown)


@dataclass(frozen=True)
class _Row:
    """One group's metrics in the period and, when compared, in the period before."""

    current: dict[str, Any]
    previous: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Answer:
    rows: dict[tuple[Any, ...], _Row]  # by dimension values, in the engine's order
    time_labels: list[str]


@dataclass(frozen=True)
class _Engine:
    """One v1 request's access to the v2 engine."""

    reports: Reports
    site: str
    caller: Caller  # a share token's grant spends that token's privacy budget
    query: V1Query
    days: tuple[date, date]
    filters: list[Any]

    def ask(self, metrics: tuple[str, ...], dimensions: tuple[str, ...] = (),
            filters: list[Any] | None = None, order_by: tuple[tuple[str, str], ...] = (),
            limit: int = MAX_LIMIT, offset: int = 0, time_labels: bool = False) -> _Answer:
        include: dict[str, Any] = {"time_labels": True} if time_labels else {}
        if self.query.compare:
            include["comparison"] = "previous_period"
        body = {"site_id": self.site, "date_range": [day.isoformat() for day in self.days],
                "metrics": list(metrics), "dimensions": list(dimensions),
                "filters": self.filters if filters is None else filters,
                "order_by": [list(pair) for pair in order_by], "include": include}
        if dimensions:
            body["pagination"] = {"limit": limit, "offset": offset}
        with _v1_fields():
            return _answer(self.reports.run(parse_query(body), self.caller), metrics)


async def _respond(request: Request, endpoint: str,
                   answer: Callable[[_Engine], dict[str, Any]]) -> Response:
    site, caller = await authorized_url_site(request)
    reports: Reports = request.app.state.reports
    params = dict(request.query_params)
    with request.app.state.metrics.report_seconds.time():
        body = await reports.share_slots.run_in_turn(caller, _run, reports, site, caller,
                                                     params, endpoint, answer)
    return JSONResponse(body, headers=NO_STORE)


def _run(reports: Reports, site: str, caller: Caller, params: Mapping[str, str],
         endpoint: str, answer: Callable[[_Engine], dict[str, Any]]) -> dict[str, Any]:
    kind = caller if isinstance(caller, str) else caller.kind
    timezone = reports.site_contexts.for_site(site, kind).timezone
    today = reports.now().astimezone(zone(timezone)).date()
    query = parse_v1_query(params, endpoint, today)
    last_day = query.last_day
    if query.compare and query.first_day <= today < last_day:
        # Plausible compares the days up to today with as many days before them.
        last_day = today
    filters = query.filters
    if query.property in _BLANKS_LEFT_OUT:
        blank = dimension(query.property).blank_label
        filters = [*filters, ["is_not", query.property, sorted({"", blank})]]
    return answer(_Engine(reports, site, caller, query, (query.first_day, last_day), filters))


def _aggregate(engine: _Engine) -> dict[str, Any]:
    query = engine.query
    answer = _measured(engine, (), False, _entry_metrics(query))
    row = next(iter(answer.rows.values()), _Row({}))
    results = {}
    for name in query.metrics:
        entry = {"value": row.current.get(name, 0)}
        if query.compare:
            previous = (row.previous or {}).get(name, 0)
            entry.update(comparison_value=previous, change=v1_change(name, previous,
                                                                     entry["value"]))
        results[name] = entry
    return {"results": results}


def _timeseries(engine: _Engine) -> dict[str, Any]:
    query = engine.query
    answer = _measured(engine, (query.interval,), "conversion_rate" in query.metrics,
                       _entry_metrics(query), time_labels=True)
    results = []
    for label in answer.time_labels:
        row = answer.rows.get((label,))
        results.append({"date": label, **{
            name: row.current.get(name) if row else _EMPTY_BUCKET.get(name, 0)
            for name in query.metrics}})
    return {"results": results}


def _breakdown(engine: _Engine) -> dict[str, Any]:
    query = engine.query
    prop = query.property
    assert prop is not None
    dimensions = _DIMENSIONS.get(prop, (prop,))
    group_rate = "conversion_rate" in query.metrics and prop != "event:goal" \
        and not prop.startswith(PROPS_PREFIX)
    entry_metrics = _entry_metrics(query)
    ordering = next((name for name in query.metrics if name != "time_on_page"), "visitors")
    offset = (query.page - 1) * query.limit
    if group_rate or entry_metrics:
        # Ordered by figures only Python has: every row, ordered and paged here.
        answer = _measured(engine, dimensions, group_rate, entry_metrics, ordering)
        rows = sorted(answer.rows.items(), key=_ordering(ordering, dimensions.index(prop)))
        rows = rows[offset:offset + query.limit]
    else:
        answer = _measured(engine, dimensions, False, (), ordering, limit=query.limit,
                           offset=offset, order_by=((ordering, "desc"), (prop, "asc")))
        rows = list(answer.rows.items())
    return {"results": [_breakdown_row(query, dimensions, values, row) for values, row in rows]}


def _measured(engine: _Engine, dimensions: tuple[str, ...], group_rate: bool,
              entry_metrics: tuple[str, ...], ordering: str | None = None,
              **ask: Any) -> _Answer:
    """The query's metrics by ``dimensions``, with group conversion rates and entry-page
    visit metrics joined in from their own queries when asked, and the ``ordering`` metric."""
    direct = tuple(name for name in engine.query.metrics
                   if name not in entry_metrics and not (group_rate and name == "conversion_rate"))
    # Visitors when a group rate divides them, the order needs them, or nothing else is
    # asked of the engine (its rows say which groups there are).
    wanted = (*direct, *(("visitors",) if group_rate or not direct else ()),
              *((ordering,) if ordering and ordering not in engine.query.metrics else ()))
    answer = engine.ask(tuple(dict.fromkeys(wanted)), dimensions, **ask)
    if group_rate:
        goalless = [item for item in engine.filters
                    if not (isinstance(item, list) and len(item) == 3 and item[1] == "event:goal")]
        answer = _with_group_rates(answer, engine.ask(("visitors",), dimensions, goalless))
    if entry_metrics:
        entries = engine.ask(entry_metrics, tuple(_ENTRY_PAGE.get(name, name)
                                                  for name in dimensions),
                             renamed(engine.filters, "event:page", _ENTRY_PAGE["event:page"]))
        answer = _joined(answer, entries, entry_metrics)
    return answer


def _entry_metrics(query: V1Query) -> tuple[str, ...]:
    """The metrics that come from the visits entering on the pages the query is about."""
    if query.property != "event:page" and "event:page" not in filtered_dimensions(query.filters):
        return ()
    return tuple(name for name in query.metrics if name in _ENTRY_METRICS)


def _with_group_rates(converted: _Answer, everyone: _Answer) -> _Answer:
    rows = {}
    for key, row in converted.rows.items():
        base = everyone.rows.get(key, _Row({}, {}))
        current = {**row.current, "conversion_rate": _rate(row.current, base.current)}
        previous = None if row.previous is None else {
            **row.previous, "conversion_rate": _rate(row.previous, base.previous or {})}
        rows[key] = _Row(current, previous)
    return replace(converted, rows=rows)


def _joined(answer: _Answer, entries: _Answer, metrics: tuple[str, ...]) -> _Answer:
    rows = {}
    for key, row in answer.rows.items():
        entry = entries.rows.get(key, _Row({}, {}))
        current = {**row.current, **{name: entry.current.get(name) for name in metrics}}
        previous = None if row.previous is None else {
            **row.previous, **{name: (entry.previous or {}).get(name) for name in metrics}}
        rows[key] = _Row(current, previous)
    return replace(answer, rows=rows)


def _rate(converted: Mapping[str, Any], everyone: Mapping[str, Any]) -> float:
    base = everyone.get("visitors") or 0
    return round(converted.get("visitors", 0) / base * 100, 1) if base else 0.0


def _ordering(metric: str, position: int) -> Callable[[tuple[tuple[Any, ...], _Row]],
                                                       tuple[bool, float, str]]:
    """Plausible's breakdown order: the first metric descending (blanks last), then the
    property's value."""
    def key(item: tuple[tuple[Any, ...], _Row]) -> tuple[bool, float, str]:
        value = item[1].current.get(metric)
        return value is None, -(value or 0), str(item[0][position])
    return key


def _breakdown_row(query: V1Query, dimensions: tuple[str, ...], values: tuple[Any, ...],
                   row: _Row) -> dict[str, Any]:
    shown: dict[str, Any] = {_result_key(name): _label(name, value)
                             for name, value in zip(dimensions, values)}
    shown.update((name, row.current.get(name)) for name in query.metrics)
    if query.compare:
        previous = row.previous or {}
        shown["comparison"] = {**{name: previous.get(name) for name in query.metrics},
                               "change": {name: v1_change(name, previous.get(name), shown[name])
                                          for name in query.metrics}}
    return shown


def _result_key(name: str) -> str:
    """``event:props:plan`` is shown as ``plan``, ``visit:source`` as ``source``."""
    return name[len(PROPS_PREFIX):] if name.startswith(PROPS_PREFIX) else name.split(":", 1)[1]


def _label(name: str, value: Any) -> Any:
    return NO_VALUE if name.startswith(PROPS_PREFIX) and value == "" else value


def v1_change(name: str, previous: float | None, current: float | None) -> float | int | None:
    """Plausible v1's ``change``: points for conversion and bounce rates (none from a zero
    bounce rate), else percent, 100 from nothing to something and 0 from nothing to nothing."""
    if previous is None or current is None:
        return None
    if name == "conversion_rate":
        return round(current - previous, 1)
    if name == "bounce_rate":
        return current - previous if previous > 0 else None
    if previous == 0:
        return 100 if current > 0 else 0
    return int(half_away(100 * (current - previous) / previous))


def _answer(report: Report, metrics: tuple[str, ...]) -> _Answer:
    rows = {}
    for result in report.results:
        comparison = result.get("comparison")
        rows[tuple(result["dimensions"])] = _Row(
            dict(zip(metrics, result["metrics"])),
            dict(zip(metrics, comparison["metrics"])) if comparison else None)
    return _Answer(rows, list(report.meta.get("time_labels", [])))


@contextmanager
def _v1_fields() -> Iterator[None]:
    """The engine's errors, naming the v1 parameter to fix instead of a v2 field."""
    try:
        yield
    except InvalidField as error:
        field = next((v1 for v2, v1 in _V1_FIELDS if (error.field or "").startswith(v2)),
                     error.field)
        raise InvalidField(error.reason, field) from None

"""The reports API: ``POST /api/v2/query``, ``GET /api/v1/stats/realtime/visitors`` and
``POST /api/v2/drops`` (what ingest filtered out: ``collector.reports.drops_report``).

Requests carry an API key (``Authorization: Bearer ck_...``) or a share token (the
same header; never in the URL, where logs and Referer headers would keep it: share
links open ``/share/<token>``, whose page sends the header). Failed key checks are
limited per client (``collector.ratelimit``). The query shape follows Plausible's
Stats API v2; answers are JSON, or CSV with ``Accept: text/csv``/``?format=csv``.
Store calls block, so they run in the thread pool, never on the event loop, on the
reports' own connections, bounded by ``COLLECTOR_REPORT_MAX_*``: a query that reaches a
limit answers 400 (it asks for too much) or 503 with ``Retry-After`` (it ran out of
time), never 500 (``report_limit_exceeded``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.dashboard.sessions import COOKIE_NAME, session_grant
from collector.errors import InvalidField, QueryLimitExceeded
from collector.ratelimit import RateLimits
from collector.reports.auth import API_KEY, Grant, require_site
from collector.reports.csv import csv_lines, wants_csv
from collector.reports.dates import zone
from collector.reports.drops_report import parse_drops_query
from collector.reports.query import Report
from collector.reports.request import (
    BEHAVIORAL_OPERATORS,
    Comparison,
    Condition,
    Filter,
    QuerySpec,
    parse_query,
)
from collector.reports.service import Reports
from collector.untrusted_json import decode_json

MAX_QUERY_BODY = 65536
NO_STORE = {"Cache-Control": "no-store"}
# include.imports: Plausible's meta for a site without imported statistics; the
# collector imports none, so it is the answer for every site.
NO_IMPORTS = {"imports_included": False, "imports_skip_reason": "no_imported_data"}


# What each limit means to the one asking, and whether asking again later may help.
_LIMIT_REASONS = {
    "rows": "this report would read more stored rows than the collector allows one query "
            "({allowed:,.0f}): ask about a shorter date range",
    "memory": "this report needs more memory than the collector allows one query "
              "({allowed:,.0f} bytes): ask about a shorter date range or fewer dimensions",
    "time": "this report ran longer than the collector allows one query ({allowed:g} s) and "
            "was stopped: try again later, or ask about a shorter date range",
    "engine memory": "the collector is short of memory for reports right now: try again later",
}


def report_routes() -> list[Route]:
    return [
        Route("/api/v2/query", query_endpoint, methods=["POST"]),
        Route("/api/v1/stats/realtime/visitors", realtime_endpoint, methods=["GET"]),
        Route("/api/v2/drops", drops_endpoint, methods=["POST"]),
        Route("/api/v2/properties", properties_endpoint, methods=["POST"]),
    ]


async def query_endpoint(request: Request) -> Response:
    reports: Reports = request.app.state.reports
    spec, kind = await _authorized(request, parse_query)
    with request.app.state.metrics.report_seconds.time():
        report = await reports.share_slots.run_in_turn(kind, reports.run, spec, kind)
    if wants_csv(request):
        return StreamingResponse(csv_lines(spec.dimensions, spec.metrics, report.results),
                                 media_type="text/csv", headers=NO_STORE)
    # Read by the report just now: the cached settings, no store call.
    timezone = reports.site_contexts.settings(spec.site_id).timezone
    meta = {**report.meta, **NO_IMPORTS} if spec.imports else report.meta
    return JSONResponse({"results": report.results, "meta": meta,
                         "query": _echo(spec, report, timezone)}, headers=NO_STORE)


async def realtime_endpoint(request: Request) -> Response:
    reports: Reports = request.app.state.reports
    site, caller = await _url_caller(request)
    visitors = await reports.share_slots.run_in_turn(caller, reports.realtime_visitors, site,
                                                     caller)
    return JSONResponse(visitors, headers=NO_STORE)


async def authorized_url_site(request: Request) -> tuple[str, Grant | str]:
    """The site a GET request names in ``?site_id=`` and the caller (a share token's grant,
    whose privacy budget the answer spends, or the kind ``api``), once it may read that
    site: the checks of ``_authorized``, for the v1 endpoints too."""
    return await _url_caller(request)


async def _url_caller(request: Request) -> tuple[str, Grant | str]:
    """``authorized_url_site``'s site, and the token's grant (a session: its kind)."""
    reports: Reports = request.app.state.reports
    site = request.query_params.get("site_id", "").strip().lower()
    grant = None if _signed_in(request) else await _checked_token(request)
    if not site:
        raise InvalidField("required: the site's domain", "site_id")
    if grant is None:
        await run_in_threadpool(session_grant, reports.store, request.cookies[COOKIE_NAME], site)
        return site, API_KEY
    require_site(grant, site)
    return site, grant


async def drops_endpoint(request: Request) -> Response:
    reports: Reports = request.app.state.reports
    spec, kind = await _authorized(request, parse_drops_query)
    report = await reports.share_slots.run_in_turn(kind, reports.drops, spec, kind)
    if wants_csv(request):
        return StreamingResponse(report.csv(spec), media_type="text/csv", headers=NO_STORE)
    return JSONResponse({"results": report.results, "meta": report.meta,
                         "query": report.query}, headers=NO_STORE)


async def properties_endpoint(request: Request) -> Response:
    """The custom property keys of a site and period (for the dashboard's picker)."""
    reports: Reports = request.app.state.reports
    spec, kind = await _authorized(request, _parse_properties_query)
    keys = await reports.share_slots.run_in_turn(kind, reports.property_keys, spec, kind)
    return JSONResponse({**keys, "query": {"site_id": spec.site_id,
                                           "date_range": spec.date_range}},
                        headers=NO_STORE)


class _SiteRequest(Protocol):
    @property
    def site_id(self) -> str: ...


Parsed = TypeVar("Parsed", bound=_SiteRequest)


async def _authorized(request: Request,
                      parse: Callable[[Any], Parsed]) -> tuple[Parsed, Grant | str]:
    """The parsed body and the caller (a token's grant; a session: its kind, api), once it
    may read the site.

    A key or share token in the request is checked before the body is read; a
    dashboard session (the sign-in cookie, which browsers send only from this
    collector's own pages) once the body names the site.
    """
    reports: Reports = request.app.state.reports
    if _signed_in(request):
        parsed = parse(await _json_body(request))
        await run_in_threadpool(session_grant, reports.store, request.cookies[COOKIE_NAME],
                                parsed.site_id)
        return parsed, API_KEY
    grant = await _checked_token(request)
    parsed = parse(await _json_body(request))
    require_site(grant, parsed.site_id)
    return parsed, grant


def _signed_in(request: Request) -> bool:
    """No key in the request, but the dashboard's session cookie."""
    return _token(request) is None and COOKIE_NAME in request.cookies


def _parse_properties_query(body: Any) -> QuerySpec:
    if not isinstance(body, dict):
        raise InvalidField("the body must be a JSON object", "body")
    unknown = sorted(set(body) - {"site_id", "date_range"})
    if unknown:
        raise InvalidField("unknown field (site_id and date_range are accepted)", unknown[0])
    return parse_query({**body, "metrics": ["visitors"]})


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else None


async def _checked_token(request: Request) -> Grant:
    reports: Reports = request.app.state.reports
    limits: RateLimits = request.app.state.rate_limits
    return await limits.checked_token(request, reports.store, _token(request))


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_QUERY_BODY:
        raise InvalidField(f"the query is larger than {MAX_QUERY_BODY} bytes", "body")
    return decode_json(body, "body")


def _echo(spec: QuerySpec, report: Report, timezone: str) -> dict[str, Any]:
    """The query as answered, in Plausible's form: posted again, it asks the same.

    The range is its first and last second in the site's timezone (both included, as
    Plausible shows them); include lists only the options that are on.
    """
    period = report.period
    local = zone(timezone)
    return {
        "site_id": spec.site_id,
        "metrics": list(spec.metrics),
        "date_range": [period.start.astimezone(local).isoformat(),
                       (period.end - timedelta(seconds=1)).astimezone(local).isoformat()]
        if period else [],
        "dimensions": list(spec.dimensions),
        "filters": [_filter_json(item) for item in spec.filters],
        "order_by": [list(item) for item in spec.order_by],
        "include": _include_json(spec),
        "pagination": {"limit": spec.limit, "offset": spec.offset},
    }


def _include_json(spec: QuerySpec) -> dict[str, Any]:
    include: dict[str, Any] = {name: True for name in ("time_labels", "total_rows", "imports",
                                                       "sample") if getattr(spec, name)}
    compared = spec.compared_with
    if spec.comparison and compared == Comparison("previous_period"):  # the older form
        include["comparison"] = "previous_period"
    elif spec.comparison:
        include["comparisons"] = {"mode": compared.mode, **(
            {"date_range": list(compared.date_range)} if compared.date_range else {}), **(
            {"match_day_of_week": True} if compared.match_day_of_week else {})}
    return include


def _filter_json(item: Filter) -> list[Any]:
    if isinstance(item, Condition) and not item.case_sensitive:
        return [item.operator, item.dimension, list(item.values), {"case_sensitive": False}]
    if isinstance(item, Condition):
        return [item.operator, item.dimension, list(item.values)]
    if item.operator in ("not", *BEHAVIORAL_OPERATORS):
        return [item.operator, _filter_json(item.children[0])]
    return [item.operator, [_filter_json(child) for child in item.children]]


async def report_limit_exceeded(request: Request, error: Exception) -> Response:
    """The app's handler for ``QueryLimitExceeded``: 400 for a report that asks for too
    much, 503 with ``Retry-After`` for one that ran out of time (or of engine memory)."""
    assert isinstance(error, QueryLimitExceeded)
    reason = _LIMIT_REASONS[error.limit].format(allowed=error.allowed)
    if error.limit in ("rows", "memory"):
        return JSONResponse({"error": reason, "limit": error.limit}, 400, headers=NO_STORE)
    # As long as the query was allowed to run: the load that slowed it may have passed.
    retry = str(max(1, math.ceil(error.allowed)))
    return JSONResponse({"error": reason, "limit": error.limit}, 503,
                        headers={**NO_STORE, "Retry-After": retry})

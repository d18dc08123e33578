"""The reports API: ``POST /api/v2/query`` and ``GET /api/v1/stats/realtime/visitors``.

Requests carry an API key (``Authorization: Bearer ck_...``) or a share token
(the same header, or ``?auth=cs_...``). The query shape follows Plausible's
Stats API v2; answers are JSON, or CSV with ``Accept: text/csv``/``?format=csv``.
Store calls block, so they run in the thread pool, never on the event loop.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.errors import InvalidField
from collector.reports.auth import Grant, check_token, require_site
from collector.reports.builder import SiteContext
from collector.reports.context import cached_settings
from collector.reports.csv import csv_lines, wants_csv
from collector.reports.goals import Goal, list_goals
from collector.reports.privacy import Thresholds, thresholds
from collector.reports.query import Report, run_report
from collector.reports.request import Condition, Filter, QuerySpec, parse_query
from collector.storage import Store

MAX_QUERY_BODY = 65536
REALTIME_SECONDS = 5 * 60
NO_STORE = {"Cache-Control": "no-store"}


def report_routes() -> list[Route]:
    return [
        Route("/api/v2/query", query_endpoint, methods=["POST"]),
        Route("/api/v1/stats/realtime/visitors", realtime_endpoint, methods=["GET"]),
    ]


async def query_endpoint(request: Request) -> Response:
    store: Store = request.app.state.report_store
    token = _token(request)
    grant = await run_in_threadpool(check_token, store, token)
    spec = parse_query(await _json_body(request))
    require_site(grant, spec.site_id)
    now = _now(request)
    report = await run_in_threadpool(_report, store, spec, grant, now)
    if wants_csv(request):
        return StreamingResponse(csv_lines(spec.dimensions, spec.metrics, report.results),
                                 media_type="text/csv", headers=NO_STORE)
    return JSONResponse({"results": report.results, "meta": report.meta,
                         "query": _echo(spec, report)}, headers=NO_STORE)


async def realtime_endpoint(request: Request) -> Response:
    store: Store = request.app.state.report_store
    grant = await run_in_threadpool(check_token, store, _token(request))
    site = request.query_params.get("site_id", "").strip().lower()
    if not site:
        raise InvalidField("required: the site's domain", "site_id")
    require_site(grant, site)
    since = int(_now(request).timestamp()) - REALTIME_SECONDS
    rows = await run_in_threadpool(
        store.rows,
        "SELECT uniq(visitor) FROM events WHERE site = {site:String} "
        "AND timestamp >= toDateTime({since:UInt32}, 'UTC') AND name != 'engagement'",
        {"site": site, "since": since})
    return JSONResponse(int(rows[0][0]), headers=NO_STORE)


def site_context(store: Store, site: str, grant_kind: str) -> SiteContext:
    """The site's timezone, goals and the k-threshold that applies to this caller."""

    def load() -> tuple[str, tuple[Goal, ...], Thresholds]:
        zone = store.rows("SELECT timezone FROM sites FINAL WHERE domain = {site:String} "
                          "AND deleted = 0", {"site": site})
        return (zone[0][0] if zone else "UTC", tuple(list_goals(store, site)),
                thresholds(store, site))

    timezone, goals, limits = cached_settings(site, load)
    return SiteContext(site, timezone, goals, limits.for_kind(grant_kind))


def _report(store: Store, spec: QuerySpec, grant: Grant, now: datetime) -> Report:
    return run_report(store, spec, site_context(store, spec.site_id, grant.kind), now)


def _token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    # Share links put the token in the URL, like Plausible's ?auth=.
    return request.query_params.get("auth")


async def _json_body(request: Request) -> Any:
    body = await request.body()
    if len(body) > MAX_QUERY_BODY:
        raise InvalidField(f"the query is larger than {MAX_QUERY_BODY} bytes", "body")
    try:
        return msgspec.json.decode(body)
    except msgspec.DecodeError:
        raise InvalidField("the body is not valid JSON", "body") from None


def _now(request: Request) -> datetime:
    clock = getattr(request.app.state, "clock", time.time)
    return datetime.fromtimestamp(clock(), UTC)


def _echo(spec: QuerySpec, report: Report) -> dict[str, Any]:
    period = report.period
    return {
        "site_id": spec.site_id,
        "metrics": list(spec.metrics),
        "date_range": [period.start.isoformat(), period.end.isoformat()] if period else [],
        "dimensions": list(spec.dimensions),
        "filters": [_filter_json(item) for item in spec.filters],
        "order_by": [list(item) for item in spec.order_by],
        "include": {"comparison": "previous_period" if spec.comparison else None,
                    "time_labels": spec.time_labels},
        "pagination": {"limit": spec.limit, "offset": spec.offset},
    }


def _filter_json(item: Filter) -> list[Any]:
    if isinstance(item, Condition):
        return [item.operator, item.dimension, list(item.values)]
    if item.operator == "not":
        return ["not", _filter_json(item.children[0])]
    return [item.operator, [_filter_json(child) for child in item.children]]

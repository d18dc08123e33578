"""The reports API: ``POST /api/v2/query``, ``GET /api/v1/stats/realtime/visitors`` and
``POST /api/v2/drops`` (what ingest filtered out: ``collector.reports.drops_report``).

Requests carry an API key (``Authorization: Bearer ck_...``) or a share token
(the same header, or ``?auth=cs_...``). The query shape follows Plausible's
Stats API v2; answers are JSON, or CSV with ``Accept: text/csv``/``?format=csv``.
Store calls block, so they run in the thread pool, never on the event loop.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from collector.errors import InvalidField
from collector.reports.auth import check_token, require_site
from collector.reports.csv import csv_lines, wants_csv
from collector.reports.drops_report import parse_drops_query
from collector.reports.query import Report
from collector.reports.request import Condition, Filter, QuerySpec, parse_query
from collector.reports.service import Reports

MAX_QUERY_BODY = 65536
NO_STORE = {"Cache-Control": "no-store"}


def report_routes() -> list[Route]:
    return [
        Route("/api/v2/query", query_endpoint, methods=["POST"]),
        Route("/api/v1/stats/realtime/visitors", realtime_endpoint, methods=["GET"]),
        Route("/api/v2/drops", drops_endpoint, methods=["POST"]),
    ]


async def query_endpoint(request: Request) -> Response:
    reports: Reports = request.app.state.reports
    grant = await run_in_threadpool(check_token, reports.store, _token(request))
    spec = parse_query(await _json_body(request))
    require_site(grant, spec.site_id)
    report = await run_in_threadpool(reports.run, spec, grant.kind)
    if wants_csv(request):
        return StreamingResponse(csv_lines(spec.dimensions, spec.metrics, report.results),
                                 media_type="text/csv", headers=NO_STORE)
    return JSONResponse({"results": report.results, "meta": report.meta,
                         "query": _echo(spec, report)}, headers=NO_STORE)


async def realtime_endpoint(request: Request) -> Response:
    reports: Reports = request.app.state.reports
    grant = await run_in_threadpool(check_token, reports.store, _token(request))
    site = request.query_params.get("site_id", "").strip().lower()
    if not site:
        raise InvalidField("required: the site's domain", "site_id")
    require_site(grant, site)
    visitors = await run_in_threadpool(reports.realtime_visitors, site)
    return JSONResponse(visitors, headers=NO_STORE)


async def drops_endpoint(request: Request) -> Response:
    reports: Reports = request.app.state.reports
    grant = await run_in_threadpool(check_token, reports.store, _token(request))
    spec = parse_drops_query(await _json_body(request))
    require_site(grant, spec.site_id)
    report = await run_in_threadpool(reports.drops, spec, grant.kind)
    if wants_csv(request):
        return StreamingResponse(report.csv(spec), media_type="text/csv", headers=NO_STORE)
    return JSONResponse({"results": report.results, "meta": report.meta,
                         "query": report.query}, headers=NO_STORE)


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

"""``POST /api/event`` and ``GET /pixel.gif``: where hits come in.

Both answer fast and never fail the tracked page: 202 when stored or
deliberately dropped (with ``X-Collector-Dropped``), 400/413 for input the
client must fix, 503 when the write buffer is full (nothing accepted is lost).
No response of the ingest path ever sets a cookie.
"""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from collector.errors import ClientError, InvalidField, PayloadTooLarge
from collector.event import Event
from collector.ingest import IncomingEvent, parse_event
from collector.pipeline import Dropped

CORS_HEADERS = {
    # Cross-site posts from any tracked page; never with credentials.
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Expose-Headers": "X-Collector-Dropped",
}
PREFLIGHT_HEADERS = {
    **CORS_HEADERS,
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "86400",
}
TRANSPARENT_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_JSON_ENCODER = msgspec.json.Encoder()
GIF_HEADERS = {"Cache-Control": "no-store, max-age=0", "Access-Control-Allow-Origin": "*"}


async def record_event(request: Request) -> Response:
    if request.method == "OPTIONS":
        return Response(status_code=204, headers=PREFLIGHT_HEADERS)
    limit = request.app.state.settings.body_limit
    body = await _read_body(request, limit)
    incoming = parse_event(body, limit)
    dropped = _store(request, incoming, len(body))
    if dropped is not None:
        return Response(b"ok", 202, {**CORS_HEADERS, "X-Collector-Dropped": dropped.reason})
    return Response(b"ok", 202, CORS_HEADERS)


async def record_pixel(request: Request) -> Response:
    """A pageview without JavaScript; always answers with the GIF, never a broken image."""
    try:
        dropped = _store(request, _pixel_event(request), 0)
    except ClientError as error:
        dropped = Dropped(f"invalid {error.field or 'request'}")
    if dropped is not None:
        return Response(TRANSPARENT_GIF, 200, {**GIF_HEADERS, "X-Collector-Dropped":
                                                dropped.reason}, media_type="image/gif")
    return Response(TRANSPARENT_GIF, 200, GIF_HEADERS, media_type="image/gif")


def _store(request: Request, incoming: IncomingEvent, size: int) -> Dropped | None:
    state = request.app.state
    client = request.scope.get("client")
    outcome = state.pipeline.process(incoming, client[0] if client else None, request.headers)
    if isinstance(outcome, Dropped):
        return outcome
    events: list[Event] = []
    visit_rows: list[tuple[object, ...]] = []
    for event in outcome:
        tracked, rows = state.visit_tracker.track(event)
        events.append(tracked)
        visit_rows.extend(rows)
    state.writer.add({"events": events, "visits": visit_rows}, size or 256 * len(events))
    return None


def _pixel_event(request: Request) -> IncomingEvent:
    params = request.query_params
    domain = params.get("d", "")
    page = params.get("u") or request.headers.get("referer", "")
    if not domain or not page:
        raise InvalidField("d and u are required", "d" if not domain else "u")
    if page.startswith("/"):
        page = f"https://{domain.split(',')[0]}{page}"
    if urlsplit(page).scheme not in ("http", "https"):
        raise InvalidField("must be a path or an http(s) URL", "u")
    body = {"n": params.get("n", "pageview"), "u": page, "d": domain, "r": params.get("r")}
    encoded = _JSON_ENCODER.encode({key: value for key, value in body.items() if value})
    return parse_event(encoded, len(encoded))


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", "body")
    chunks = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", "body")
        chunks.append(chunk)
    return b"".join(chunks)

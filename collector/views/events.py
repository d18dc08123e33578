"""``POST /api/event`` and ``GET /pixel.gif``: where hits come in.

Both answer fast and never fail the tracked page: 202 when stored or
deliberately dropped (with ``X-Collector-Dropped``), 400/413 for input the
client must fix, 503 when the write buffer is full (nothing accepted is lost).
The pixel answers every request with its GIF, and says in ``X-Collector-Dropped``
what was not recorded: an image tag shows a broken image for anything else.
No response of the ingest path ever sets a cookie.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlsplit

import msgspec
from starlette.datastructures import State
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from collector.errors import (
    ClientError,
    InvalidField,
    OverloadedError,
    PayloadTooLarge,
    TooManyRequests,
)
from collector.ingest import IncomingEvent, parse_event
from collector.pipeline import Dropped
from collector.recording import Recorder

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
ACCEPTED_RAW_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"),
                        *((name.lower().encode(), value.encode())
                          for name, value in CORS_HEADERS.items())]
PREFLIGHT_RAW_HEADERS = [(name.lower().encode(), value.encode())
                         for name, value in PREFLIGHT_HEADERS.items()]
GIF_HEADERS = {"Cache-Control": "no-store, max-age=0", "Access-Control-Allow-Origin": "*"}

logger = logging.getLogger("collector.events")


class EventEndpoint:
    """``POST /api/event`` as a bare ASGI app: the busiest path skips Request/Response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await record_event(scope, receive, send)


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


async def record_event(scope: Scope, receive: Receive, send: Send) -> int:
    """Handle one event request over ASGI; return the status sent (for the access log).

    ``collector.event_protocol`` answers most events without ASGI, through ``answer_event``
    too; this is the path of the rest (and of every ASGI server but ours).
    """
    if scope["method"] == "OPTIONS":
        await _respond(send, 204, PREFLIGHT_RAW_HEADERS, b"")
        return 204
    state = scope["app"].state
    headers = decoded_headers(scope["headers"])
    limit = state.settings.body_limit
    try:
        body = await _read_body(receive, headers, limit)
    except PayloadTooLarge as error:
        status, answer_headers, answer_body = error_answer(error)
    else:
        client = scope.get("client")
        status, answer_headers, answer_body = answer_event(
            state, headers, client[0] if client else None, body)
    await _respond(send, status, answer_headers, answer_body)
    return status


def answer_event(state: State, headers: dict[str, str], peer: str | None,
                 body: bytes, staged: bool = False) -> Answer:
    """The answer to an event whose whole body is ``body``; input errors are answers too.

    Synchronous and complete: when it returns 202 the event is in the write-ahead log
    (with ``staged``, once ``Writer.commit`` returns: send the answer only then).
    """
    try:
        incoming = parse_event(body, state.settings.body_limit)
        dropped = _store(state, headers, peer, incoming, len(body), staged)
    except (ClientError, OverloadedError) as error:
        return error_answer(error)
    if dropped is None:
        return 202, ACCEPTED_RAW_HEADERS, b"ok"
    return 202, [*ACCEPTED_RAW_HEADERS, (b"x-collector-dropped", dropped.reason.encode())], b"ok"


def error_answer(error: ClientError | OverloadedError) -> Answer:
    """A refused event's JSON answer, shaped like the app's exception handlers."""
    extra: list[tuple[bytes, bytes]] = []
    if isinstance(error, TooManyRequests):
        status, body, extra = 429, error.as_json(), [(b"retry-after",
                                                       str(error.retry_after).encode())]
    elif isinstance(error, ClientError):
        status, body = error.status_code, error.as_json()
    else:  # the write buffer is full: nothing of this request was kept
        status, body, extra = 503, {"error": str(error)}, [(b"retry-after", b"1")]
    return status, [*JSON_RAW_HEADERS, *extra], _JSON_ENCODER.encode(body)


JSON_RAW_HEADERS = [(b"content-type", b"application/json"), (b"access-control-allow-origin", b"*")]


async def record_pixel(request: Request) -> Response:
    """A pageview without JavaScript; always answers with the GIF, never a broken image."""
    headers = decoded_headers(request.scope["headers"])
    client = request.client
    extra: dict[str, str] = {}
    try:
        dropped = _store(request.app.state, headers, client.host if client else None,
                         _pixel_event(request, headers), 0)
    except TooManyRequests as error:  # a rate limit (collector.ratelimit): the GIF all the same
        return Response(TRANSPARENT_GIF, 429, {**GIF_HEADERS, "Retry-After":
                                               str(error.retry_after)}, media_type="image/gif")
    except ClientError as error:
        dropped = Dropped(f"invalid {error.field or 'request'}")
    except OverloadedError:
        dropped, extra = Dropped("overloaded"), {"Retry-After": "1"}
    except Exception:
        # A bug must not show the visitor a broken image; the operator reads it here.
        logger.exception("the pixel could not record a hit")
        dropped = Dropped("error")
    if dropped is not None:
        return Response(TRANSPARENT_GIF, 200, {**GIF_HEADERS, **extra, "X-Collector-Dropped":
                                                dropped.reason}, media_type="image/gif")
    return Response(TRANSPARENT_GIF, 200, GIF_HEADERS, media_type="image/gif")


def decoded_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers as a plain dict with lower-case names, decoded once.

    Starlette's ``Headers`` scans and decodes the raw list on every lookup; the ingest
    path looks up about ten headers per request, so one dict is several µs cheaper.
    Repeated headers keep their last value.
    """
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in raw}


def _store(state: State, headers: dict[str, str], peer: str | None, incoming: IncomingEvent,
           size: int, staged: bool = False) -> Dropped | None:
    recorder: Recorder = state.recorder
    return recorder.record(incoming, peer, headers, size, staged)


def _pixel_event(request: Request, headers: dict[str, str]) -> IncomingEvent:
    params = request.query_params
    domain = params.get("d", "")
    page = params.get("u") or headers.get("referer", "")
    if not domain or not page:
        raise InvalidField("d and u are required", "d" if not domain else "u")
    if page.startswith("/"):
        page = f"https://{domain.split(',')[0]}{page}"
    try:
        scheme = urlsplit(page).scheme
    except ValueError:  # an unclosed IPv6 bracket
        raise InvalidField("not a valid URL", "u") from None
    if scheme not in ("http", "https"):
        raise InvalidField("must be a path or an http(s) URL", "u")
    body = {"n": params.get("n", "pageview"), "u": page, "d": domain, "r": params.get("r")}
    encoded = _JSON_ENCODER.encode({key: value for key, value in body.items() if value})
    return parse_event(encoded, len(encoded))


async def _read_body(receive: Receive, headers: dict[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the body is larger than {limit} bytes", "body")
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise PayloadTooLarge(f"the body is larger than {limit} bytes", "body")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]],
                   body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})

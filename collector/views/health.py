"""``/healthz`` (alive), ``/readyz`` (ready for traffic) and ``/api/health`` (the write path).

``/healthz`` answers from the event loop alone: a load balancer restarts a process that
stops answering it. ``/readyz`` is 200 when the store answers a query on the events table
within ``READY_TIMEOUT_SECONDS`` and the write buffer and the write-ahead log are below
90% of their caps; its 503 says which, in words — never the store's own error text, which can
name hosts, users and paths. ``/api/health`` answers everyone its status only; the
buffer, the rows, the drops and the last write error (only while writes are failing)
need an API key or the operator's access of ``/metrics`` (``collector.metrics``).
"""

from __future__ import annotations

import asyncio

from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from collector.errors import Forbidden, StorageError
from collector.metrics import bearer_token, is_operator, log_bytes
from collector.ratelimit import RateLimits
from collector.reports.auth import API_KEY
from collector.storage import Store

READY_TIMEOUT_SECONDS = 2.0
NEARLY_FULL = 0.9  # of the write buffer's or the log's cap
NO_STORE = {"Cache-Control": "no-store"}


def health_routes() -> list[Route]:
    return [
        Route("/healthz", alive, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/api/health", health, methods=["GET"]),
    ]


async def alive(request: Request) -> Response:
    return PlainTextResponse("ok", headers=NO_STORE)


async def ready(request: Request) -> Response:
    reason = await _not_ready_because(request.app.state)
    if reason:
        return JSONResponse({"status": "unavailable", "reason": reason}, 503, headers=NO_STORE)
    return JSONResponse({"status": "ready"}, headers=NO_STORE)


async def health(request: Request) -> Response:
    state = request.app.state
    writer = state.writer
    status = {"status": "ok" if not writer.stats.failed_attempts else "degraded"}
    if not await _may_see_internals(request):
        return JSONResponse(status, headers=NO_STORE)
    return JSONResponse({
        **status,
        "store": "embedded" if state.store.embedded else "server",
        "buffered_rows": writer.buffered_rows,
        "spooled_batches": writer.spooled_batches,
        "log_bytes": log_bytes(state),
        "accepted_rows": writer.stats.accepted,
        "written_rows": writer.stats.written,
        # Only while writes are failing: a recovered store has no error to show.
        "last_write_error": (writer.stats.last_error or None)
        if writer.stats.failed_attempts else None,
        "dropped": state.pipeline.drops.by_reason,
        "sites": "all (dev mode)" if state.sites.open_to_all else len(state.sites.all()),
    }, headers=NO_STORE)


async def _may_see_internals(request: Request) -> bool:
    """The operator's access, or an API key (share tokens are public: they never do)."""
    if is_operator(request):
        return True
    token = bearer_token(request)
    if not token:
        return False
    limits: RateLimits = request.app.state.rate_limits
    grant = await limits.checked_token(request, request.app.state.reports.store, token)
    if grant.kind != API_KEY:
        raise Forbidden("a share token does not open the collector's internals",
                        "authorization")
    return True


async def _not_ready_because(state: State) -> str:
    """Why the app should get no traffic now ("" when it should)."""
    writer = getattr(state, "writer", None)
    if writer is None:
        return "starting"
    settings = state.settings
    # Nearly full is not ready: a balancer should send traffic elsewhere before the 503s.
    if writer.buffered_rows >= settings.buffer_max_rows * NEARLY_FULL:
        return "the write buffer is nearly full"
    if log_bytes(state) >= (settings.wal_max_bytes or settings.spool_max_bytes) * NEARLY_FULL:
        return "the log on disk is nearly full"
    probe: StoreProbe | None = getattr(state, "store_probe", None)
    if probe is None:
        probe = state.store_probe = StoreProbe(state.probe_store)
    if not await probe.answers(READY_TIMEOUT_SECONDS):
        return "the store does not answer"
    return ""


class StoreProbe:
    """A trivial query, at most one at a time: a hung store holds one thread, not one a poll."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._running: asyncio.Future[bool] | None = None

    async def answers(self, timeout: float) -> bool:
        if self._running is None or self._running.done():
            self._running = asyncio.get_running_loop().run_in_executor(None, self._query)
        try:
            return await asyncio.wait_for(asyncio.shield(self._running), timeout)
        except TimeoutError:
            return False

    def _query(self) -> bool:
        try:
            # Reads the events table, so a store that lost our database is not ready either.
            self._store.rows("SELECT 1 FROM events LIMIT 0")
        except StorageError:
            return False
        return True

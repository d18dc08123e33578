"""``GET /api/health``: is the collector up, and how is its write buffer doing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse


async def health(request: Request) -> JSONResponse:
    state = request.app.state
    writer = state.writer
    return JSONResponse({
        "status": "ok" if not writer.stats.failed_attempts else "degraded",
        "store": "embedded" if state.store.embedded else "server",
        "buffered_rows": writer.buffered_rows,
        "spooled_batches": writer.spooled_batches,
        "accepted_rows": writer.stats.accepted,
        "written_rows": writer.stats.written,
        "last_write_error": writer.stats.last_error or None,
        "dropped": state.pipeline.drops.by_reason,
        "sites": "all (dev mode)" if state.sites.open_to_all else len(state.sites.all()),
    })

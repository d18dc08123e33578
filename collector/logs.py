"""Logging, including the access log that replaces uvicorn's.

uvicorn's access log prints each client's IP address. Ours prints the method,
the path without its query string, the status and the duration — nothing that
identifies a visitor.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("collector.access")


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's own access log carries client addresses: it is switched off for good.
    logging.getLogger("uvicorn.access").disabled = True


def uvicorn_log_config() -> dict[str, Any]:
    """Leave logging to ``configure_logging``: uvicorn adds no handlers of its own."""
    return {"version": 1, "disable_existing_loggers": False}


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            log_access(scope, status, started)


def log_access(scope: Scope, status: int, started: float) -> None:
    # The path only: query strings can carry personal data; the client address never.
    access_logger.info('"%s %s" %d %.1fms', scope["method"], scope["path"], status,
                       (time.perf_counter() - started) * 1000)

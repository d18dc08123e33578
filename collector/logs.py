"""Logging, including the access log that replaces uvicorn's.

uvicorn's access log prints each client's IP address. Ours prints the method,
the path without its query string, the status and the duration — nothing that
identifies a visitor. A share link's path carries its token, so it is logged as
``/share/<token>``. ``COLLECTOR_LOG_FORMAT=json`` writes each line as one JSON
object (time, level, logger, message; the access log's fields each on their own),
for log collectors that parse them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_logger = logging.getLogger("collector.access")
ACCESS_FORMAT = '"%s %s" %d %.1fms'
SHARE_PREFIX = "/share/"


class JsonFormatter(logging.Formatter):
    """One JSON object per record; an access-log record's arguments as named fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.name == access_logger.name and isinstance(record.args, tuple) \
                and len(record.args) == 4:
            method, path, status, milliseconds = record.args
            entry.update(method=method, path=path, status=status,
                         duration_ms=round(milliseconds, 1)
                         if isinstance(milliseconds, float) else milliseconds)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
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


def log_access(scope: Mapping[str, Any], status: int, started: float) -> None:
    # The path only: query strings can carry personal data; the client address never.
    path = scope["path"]
    if path.startswith(SHARE_PREFIX):
        path = SHARE_PREFIX + "<token>"  # a share link's token opens its dashboard
    access_logger.info(ACCESS_FORMAT, scope["method"], path, status,
                       (time.perf_counter() - started) * 1000)

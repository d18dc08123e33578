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
import threading
import time
from collections import Counter
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
        summary = getattr(record, "answers", None)
        if isinstance(summary, dict):  # EventLog's line: its figures as fields
            entry.update(summary)
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


class EventLog:
    """The access log of ``POST /api/event``: a line per interval, not a line per event.

    Every page view of every tracked site is an event: a line each would be nearly the
    whole log, and writing them about a tenth of ingest's time. So events are summed —
    answers by status, mean and slowest time — and ``flush`` (every
    ``EVENT_LOG_SECONDS``, and at shutdown) writes one line; with
    ``COLLECTOR_LOG_LEVEL=debug`` each event also gets a line of its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # answered on the event loop, flushed on a duty's thread
        self._statuses: Counter[int] = Counter()
        self._milliseconds = 0.0
        self._slowest = 0.0
        self._since = time.monotonic()

    def answered(self, status: int, started: float) -> None:
        milliseconds = (time.perf_counter() - started) * 1000
        with self._lock:
            self._statuses[status] += 1
            self._milliseconds += milliseconds
            if milliseconds > self._slowest:
                self._slowest = milliseconds
        if access_logger.isEnabledFor(logging.DEBUG):
            access_logger.debug(ACCESS_FORMAT, "POST", EVENT_PATH, status, milliseconds)

    def flush(self) -> None:
        """Write the line for the events answered since the last one (none: no line)."""
        now = time.monotonic()
        with self._lock:
            statuses, self._statuses = self._statuses, Counter()
            milliseconds, slowest, self._milliseconds, self._slowest = \
                self._milliseconds, self._slowest, 0.0, 0.0
            seconds, self._since = now - self._since, now
        answered = sum(statuses.values())
        if not answered:
            return
        by_status = {str(status): count for status, count in sorted(statuses.items())}
        access_logger.info(
            '"POST %s" %d answered in %.0fs (%s), mean %.1fms, slowest %.1fms', EVENT_PATH,
            answered, seconds, ", ".join(f"{status}: {count}" for status, count in
                                         by_status.items()),
            milliseconds / answered, slowest,
            extra={"answers": {"method": "POST", "path": EVENT_PATH, "answered": answered,
                               "by_status": by_status, "seconds": round(seconds, 1),
                               "mean_ms": round(milliseconds / answered, 1),
                               "slowest_ms": round(slowest, 1)}})


EVENT_PATH = "/api/event"
EVENT_LOG_SECONDS = 10.0

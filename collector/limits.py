"""What one client can make the server hold or wait for: request heads and read deadlines.

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and answers 503
beyond ``limit_concurrency``, but nothing bounds a request's head (httptools buffers a
header of any size) nor the time a client may take to send it or its body: a
connection that sends nothing, half a head, or a body a byte a minute stays open for
good. ASGI middleware cannot help, as the app is called only once the head is in. So
``collector serve`` runs uvicorn's httptools protocol with three additions
(``LimitedHttpProtocol``):

- a head size limit: a request line and headers over ``max_header_bytes`` get 431 and
  the connection is closed, before a larger head is ever whole in memory;
- a header deadline: from connecting, or from the first byte of a request on a reused
  connection, to the end of the head, ``header_timeout`` seconds;
- a body deadline: from the end of the head to the end of the body, ``body_timeout``
  seconds; then 408 and the connection is closed.

Deadlines are absolute: trickling a byte at a time does not extend them. A request
that arrives whole in one read, as nearly every event does, arms no timer at all.

``QuietDisconnects`` wraps the app: a client that goes away before its body is read is a
debug line, not an ERROR with a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any, ClassVar

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from collector.settings import Settings

logger = logging.getLogger(__name__)

# Shutdown waits this long for requests in progress, then cancels them and flushes.
SHUTDOWN_GRACE_SECONDS = 30
HEADER_TOO_LARGE = "header-too-large"
HEADER_TIMEOUT = "header-timeout"
BODY_TIMEOUT = "body-timeout"
CLIENT_GONE = 'client went away before its request was read: "%s %s"'

_IDLE, _HEAD, _BODY = "idle", "head", "body"  # where the current request stands
_EXPIRED_MESSAGES = {_IDLE: "no request within the header timeout",
                     _HEAD: "request head not complete within the header timeout",
                     _BODY: "request body not complete within the body timeout"}


@dataclass(frozen=True)
class ConnectionLimits:
    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(settings.max_header_bytes, settings.header_timeout, settings.body_timeout)


def _answer(status: bytes, text: bytes) -> bytes:
    """A whole HTTP response that closes the connection, for where no app runs."""
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\n"
            b"content-length: " + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n"
            + text)


_TOO_LARGE_TEXT = b"request header fields too large"
_TOO_LARGE = _answer(b"431 Request Header Fields Too Large", _TOO_LARGE_TEXT)
_TIMED_OUT = _answer(b"408 Request Timeout", b"request not received in time")


async def _header_fields_too_large(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 431,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(_TOO_LARGE_TEXT)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": _TOO_LARGE_TEXT})


# Called by name, not through super(), in the methods every request runs through.
_Base = HttpToolsProtocol


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a head size limit and header and body deadlines.

    Use ``protocol_class(limits)``: the limits and the refusal counts are class attributes
    of the subclass it makes, as uvicorn builds one instance per connection itself.
    """

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    refusals: ClassVar[Counter[str]] = Counter()

    _phase = _IDLE
    _head_bytes = 0  # received since the current head began: at least the head's size
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        # A new connection owes its first head within the header deadline.
        self._deadline = self.loop.call_later(self.limits.header_timeout, self._expired)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._phase is not _BODY:  # bytes between requests begin the next one's head
            self._phase = _HEAD
            self._head_bytes += len(data)
        _Base.data_received(self, data)
        if self._phase is _IDLE:  # the request is whole: what happens next is the app's time
            if self._deadline is not None:
                self._disarm()
        elif self.transport.is_closing():
            self._disarm()
        elif self._phase is _HEAD and self._head_bytes > self.limits.max_header_bytes:
            self._refuse_unfinished_head()
        elif self._deadline is None:
            seconds = self.limits.header_timeout if self._phase is _HEAD \
                else self.limits.body_timeout
            self._deadline = self.loop.call_later(seconds, self._expired)

    def on_headers_complete(self) -> None:
        self._head_complete()
        if self._head_too_large():
            # The head came whole in this read: the request gets its 431 through uvicorn,
            # which then closes the connection and discards the body.
            application, self.app = self.app, _header_fields_too_large
            try:
                _Base.on_headers_complete(self)
            finally:
                self.app = application
            return
        _Base.on_headers_complete(self)

    def on_message_complete(self) -> None:
        self._message_complete()
        _Base.on_message_complete(self)

    def _between_requests(self) -> bool:
        """Whether no request has begun since the last one was whole."""
        return self._phase is _IDLE

    def _head_complete(self) -> None:
        """The head is in: its deadline is met, the body's applies (armed by data_received)."""
        self._phase = _BODY
        if self._deadline is not None:
            self._disarm()

    def _head_too_large(self) -> bool:
        """Whether the head just parsed is over the limit (then counted as refused)."""
        if self._head_bytes > self.limits.max_header_bytes \
                and self._head_size() > self.limits.max_header_bytes:
            self.refusals[HEADER_TOO_LARGE] += 1
            logger.debug("refused a request head over %d bytes", self.limits.max_header_bytes)
            return True
        return False

    def _message_complete(self) -> None:
        """The request is whole: the next bytes begin the next request's head."""
        self._phase = _IDLE
        self._head_bytes = 0

    def _head_size(self) -> int:
        """The bytes of the head just parsed: its target and its header fields."""
        return len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)

    def _refuse_unfinished_head(self) -> None:
        self.refusals[HEADER_TOO_LARGE] += 1
        logger.debug("refused a request head over %d bytes", self.limits.max_header_bytes)
        self._close_with(_TOO_LARGE)

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        reason = BODY_TIMEOUT if self._phase is _BODY else HEADER_TIMEOUT
        self.refusals[reason] += 1
        logger.debug("closed a connection: %s", _EXPIRED_MESSAGES[self._phase])
        # A connection that never sent a byte is closed without a word, as when idle.
        self._close_with(_TIMED_OUT if self._phase is not _IDLE else b"")

    def _close_with(self, answer: bytes) -> None:
        self._disarm()
        cycle = self.cycle  # the connection's last request
        responding = cycle is not None and cycle.response_started and not cycle.response_complete
        if answer and not responding:  # written into a response under way, it would garble it
            self.transport.write(answer)
        self.transport.close()

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None


def protocol_class(limits: ConnectionLimits, base: type[LimitedHttpProtocol] = LimitedHttpProtocol,
                   **attributes: Any) -> type[LimitedHttpProtocol]:
    """A ``base`` enforcing ``limits``, with refusal counts of its own (and ``attributes``)."""
    return type(base.__name__, (base,), {**attributes, "limits": limits, "refusals": Counter()})


def server_options(settings: Settings, base: type[LimitedHttpProtocol] = LimitedHttpProtocol,
                   **attributes: Any) -> dict[str, Any]:
    """The ``uvicorn.Config`` options that bound connections, from the settings.

    ``base`` and ``attributes`` choose the protocol (``collector.event_protocol``).
    """
    return {
        "http": protocol_class(ConnectionLimits.from_settings(settings), base, **attributes),
        "timeout_keep_alive": settings.keep_alive_timeout,
        # Beyond it uvicorn answers 503 to every new request until connections close.
        "limit_concurrency": settings.max_connections,
        "timeout_graceful_shutdown": SHUTDOWN_GRACE_SECONDS,
    }


class QuietDisconnects:
    """The app, with a client gone before its request was read logged at debug level.

    Nothing is lost and nothing is wrong on our side: it is the client's network, or a
    connection the deadlines closed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except ClientDisconnect:
            # The path only, as in the access log: query strings can carry personal data.
            logger.debug(CLIENT_GONE, scope.get("method"), scope.get("path"))

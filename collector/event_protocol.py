"""``POST /api/event`` answered inside the HTTP protocol, without going through ASGI.

Every page view of every tracked site is one of these requests, and its answer is
known as soon as its body is in: recording is synchronous, and on return the event
is in the write-ahead log. Through ASGI each one also costs a task, an
``asyncio.Event``, two send messages checked header by header, and two socket
writes, which together cost as much as recording the event. So ``IngestProtocol``
answers them itself, with one write, when that cannot change what the client sees:

- nothing else of the connection is in flight (pipelined requests keep their order);
- no ``Expect: 100-continue`` (the ASGI path sends the interim answer);
- the exact path, no query string, not an upgrade, under the concurrency limit.

Answers are written once per turn of the event loop, not one by one (``_unsent``):
each write to a waiting client wakes it, and a loop turn answers several connections,
so the wake-ups come in one burst while the client is already running. The turn's
write-ahead records go first, in one write (``Writer.add(staged=True)``, then
``commit_events``): a 202 still leaves only once its rows are in the log. An answer
leaves at most one loop turn later; before a connection is closed, shut down or handed
a pipelined request through ASGI its unsent answers are written first.

Any other request goes to the app as before. Both paths build their answer with
``collector.views.events.answer_event``, count and log it through the app
(``CollectorApp.event_answered``), and so answer alike: a test compares them.
"""

from __future__ import annotations

import logging
import time
from typing import Any, ClassVar, Protocol

from uvicorn.protocols.http.httptools_impl import STATUS_LINE

from collector.errors import PayloadTooLarge
from collector.limits import CLIENT_GONE, LimitedHttpProtocol, server_options
from collector.settings import Settings
from collector.views.events import Answer, error_answer

logger = logging.getLogger(__name__)

EVENT_PATH = b"/api/event"
_SCOPE = {"method": "POST", "path": EVENT_PATH.decode()}  # what the access log reads
_Base = LimitedHttpProtocol


class EventAnswerer(Protocol):
    """What the protocol needs from the app (``collector.app.CollectorApp``)."""

    def answer_event_request(self, raw_headers: list[tuple[bytes, bytes]], peer: str | None,
                             body: bytes) -> Answer: ...

    def event_answered(self, scope: Any, status: int, started: float) -> None: ...

    def commit_events(self) -> None: ...


class IngestProtocol(LimitedHttpProtocol):
    """The connection limits' protocol, answering event requests without ASGI.

    Use ``ingest_server_options``: the app and the body limit are class attributes of
    the subclass it makes, as uvicorn builds one instance per connection itself.
    """

    events: ClassVar[EventAnswerer | None] = None
    body_limit: ClassVar[int] = 65536

    # The event request being read by this protocol, not by ASGI: its body so far.
    _event_body: list[bytes] | None = None
    _event_size = 0
    _event_started = 0.0
    _paused_for_answers = False
    _unsent: list[bytes] | None = None  # answers waiting for the end of the loop turn
    _idle_since = 0.0  # loop time of the last answer: the keep-alive timeout runs from it

    def connection_lost(self, exc: Exception | None) -> None:
        self._unsent = None  # the client is gone: nobody to answer
        if self._event_body is not None:  # nothing of it was recorded, nothing is wrong
            self._event_body = None
            logger.debug(CLIENT_GONE, *_SCOPE.values())
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        _Base.connection_lost(self, exc)

    # Keep-alive, with one timer per connection: uvicorn cancels its timer whenever data
    # comes and arms a new one after each answer, a timer per request. Here the timer
    # stays armed; when it fires it closes the connection only if no request is under
    # way and the last answer is the timeout old, and otherwise waits for the rest.
    def _unset_keepalive_if_required(self) -> None:
        pass

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:  # the next pipelined request, through the app
            self._send_unsent()  # its answer comes after the ones before it
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler)

    def timeout_keep_alive_handler(self) -> None:
        self.timeout_keep_alive_task = None
        if self.transport.is_closing():
            return
        if not self._between_requests() or self.pipeline \
                or (self.cycle is not None and not self.cycle.response_complete):
            return  # a request is under way: its answer arms the timer again
        remaining = self._idle_since + self.timeout_keep_alive - self.loop.time()
        if remaining > 0:
            self.timeout_keep_alive_task = self.loop.call_later(
                remaining, self.timeout_keep_alive_handler)
        else:
            self.transport.close()

    # Whatever else writes to the connection writes after the answers queued before it.
    def shutdown(self) -> None:
        self._send_unsent()
        _Base.shutdown(self)

    def send_400_response(self, msg: str) -> None:
        self._send_unsent()
        _Base.send_400_response(self, msg)

    def _close_with(self, answer: bytes) -> None:
        self._send_unsent()
        _Base._close_with(self, answer)

    def on_message_begin(self) -> None:
        # What uvicorn's on_message_begin resets; its ASGI scope (a dict and a copy of the
        # app state per request) is built only for a request that goes through ASGI.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def on_headers_complete(self) -> None:
        if not self._answers_here():
            self._send_unsent()  # the app's answer comes after the ones before it
            self._begin_scope()
            _Base.on_headers_complete(self)  # the ASGI path (and the 431 of a large head)
            return
        self._head_complete()
        self._event_body, self._event_size = [], 0
        self._event_started = time.perf_counter()
        declared = _content_length(self.headers)
        if declared is not None and declared > self.body_limit:
            self._refuse_oversized()

    def on_body(self, body: bytes) -> None:
        chunks = self._event_body
        if chunks is None:
            _Base.on_body(self, body)
            return
        if self.transport.is_closing():  # refused already: the rest is not read
            return
        self._event_size += len(body)
        if self._event_size > self.body_limit:
            self._refuse_oversized()
        else:
            chunks.append(body)

    def on_message_complete(self) -> None:
        chunks = self._event_body
        if chunks is None:
            _Base.on_message_complete(self)
            return
        self._event_body = None
        self._message_complete()
        if self.transport.is_closing():  # refused while the body came in, or gone
            return
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        peer = self.client[0] if self.client else None
        assert self.events is not None
        keep_alive = self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
        self._answer(self.events.answer_event_request(self.headers, peer, body), keep_alive)

    def _answer(self, answer: Answer, keep_alive: bool) -> None:
        """Queue ``answer`` for the end of the loop turn (sent at once when the connection
        closes after it), count and log it, then close or wait for more."""
        status, headers, payload = answer
        self._queue(_encoded(self.server_state.default_headers, status, headers, payload,
                             keep_alive))
        assert self.events is not None
        self.events.event_answered(_SCOPE, status, self._event_started)
        if not keep_alive:
            self.server_state.total_requests += 1
            self._send_unsent()
            self.transport.close()
            return
        self.on_response_complete()  # arms the keep-alive timeout, as after any answer

    def _queue(self, data: bytes) -> None:
        if self._unsent is None:
            self._unsent = [data]
            if not _UNSENT:
                self.loop.call_soon(_send_all_unsent)
            _UNSENT.append(self)
        else:
            self._unsent.append(data)

    def _send_unsent(self) -> None:
        unsent = self._unsent
        if unsent is None:
            return
        self._unsent = None
        assert self.events is not None
        self.events.commit_events()  # the answers promise rows in the log: write them first
        if self.transport.is_closing():
            return
        self.transport.write(unsent[0] if len(unsent) == 1 else b"".join(unsent))
        if self.flow.write_paused and not self.transport.is_closing():
            # The client sends requests without reading the answers: stop reading its
            # requests until it does, or the answers would pile up in memory.
            self.flow.pause_reading()
            self._paused_for_answers = True

    def resume_writing(self) -> None:
        _Base.resume_writing(self)
        if self._paused_for_answers:
            self._paused_for_answers = False
            self.flow.resume_reading()

    def _begin_scope(self) -> None:
        """uvicorn's on_message_begin, late: the scope, for the head already read."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        _Base.on_message_begin(self)
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def _answers_here(self) -> bool:
        if self.events is None or self.transport.is_closing() \
                or self._head_bytes > self.limits.max_header_bytes \
                or self.parser.get_method() != b"POST" \
                or self.url != EVENT_PATH or self.expect_100_continue \
                or self.parser.should_upgrade() or self.pipeline:
            return False
        if self.cycle is not None and not self.cycle.response_complete:
            return False  # a request before it is still being answered
        concurrency = self.limit_concurrency
        return concurrency is None or (len(self.connections) < concurrency
                                       and len(self.tasks) < concurrency)

    def _refuse_oversized(self) -> None:
        """413, as the ASGI path answers it, and the connection closed: its body is unread."""
        self._answer(error_answer(PayloadTooLarge(
            f"the body is larger than {self.body_limit} bytes", "body")), keep_alive=False)


# Protocols with answers queued in this loop turn; ``_send_all_unsent`` writes them.
_UNSENT: list[IngestProtocol] = []


def _send_all_unsent() -> None:
    queued = _UNSENT[:]
    _UNSENT.clear()
    for protocol in queued:
        protocol._send_unsent()


def _encoded(default_headers: list[tuple[bytes, bytes]], status: int,
             headers: list[tuple[bytes, bytes]], payload: bytes, keep_alive: bool) -> bytes:
    content = [STATUS_LINE[status]]
    for name, value in (*default_headers, *headers):
        content += (name, b": ", value, b"\r\n")
    content.append(b"content-length: %d\r\n" % len(payload))
    if not keep_alive:
        content.append(b"connection: close\r\n")
    content += (b"\r\n", payload)
    return b"".join(content)


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


def ingest_server_options(settings: Settings, events: EventAnswerer) -> dict[str, Any]:
    """``collector.limits.server_options``, with event requests answered by ``events``."""
    return server_options(settings, IngestProtocol, events=events,
                          body_limit=settings.body_limit)


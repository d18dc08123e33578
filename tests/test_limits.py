"""Connection limits against a served collector, with raw sockets: heads over the limit get
431, clients too slow with a head or a body are cut off, idle connections do not pile up,
and a client leaving mid-body is a debug line (collector.limits)."""

from __future__ import annotations

import json
import logging
import select
import selectors
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from collector.app import CollectorApp, create_app
from collector.event_protocol import ingest_server_options
from collector.limits import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    HEADER_TOO_LARGE,
    LimitedHttpProtocol,
    QuietDisconnects,
)
from collector.logs import uvicorn_log_config
from collector.settings import Settings
from collector.storage import Store
from tests.browser_support import BackgroundServer
from tests.conftest import CHROME_UA, app_settings
from tests.test_serve import free_port, serving

TIMEOUT = 1.0  # the header and body deadlines of the served app, and its keep-alive
SLACK = 3.0  # what a loaded machine may add before the server acts on a deadline
EVENT = json.dumps({"n": "pageview", "u": "https://limits.test/", "d": "limits.test"}).encode()


def request_bytes(body: bytes = EVENT, user_agent: str = CHROME_UA,
                  length: int | None = None) -> bytes:
    """A whole ``POST /api/event`` (``length`` declares another Content-Length)."""
    declared = len(body) if length is None else length
    return (b"POST /api/event HTTP/1.1\r\nHost: limits.test\r\nContent-Type: text/plain\r\n"
            b"User-Agent: " + user_agent.encode() + b"\r\nContent-Length: "
            + str(declared).encode() + b"\r\n\r\n" + body)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def until_closed(connection: socket.socket, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection; fails if it does not
    within ``seconds``."""
    received = b""
    deadline = time.monotonic() + seconds
    while True:
        connection.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            raise AssertionError(f"still open after {seconds} s, got {received!r}") from None
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def one_response(connection: socket.socket) -> bytes:
    """One response on a connection kept open (its head and its Content-Length body)."""
    received = b""
    while b"\r\n\r\n" not in received:
        received += connection.recv(65536)
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += connection.recv(65536)
    return head


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def readable(connection: socket.socket) -> bool:
    return bool(select.select([connection], [], [], 0)[0])


def served_options(app: CollectorApp, **overrides: object) -> dict[str, object]:
    """uvicorn's options as `collector serve` sets them, with 1 s deadlines."""
    settings = Settings.from_env({}, header_timeout=TIMEOUT, body_timeout=TIMEOUT,
                                 keep_alive_timeout=1, **overrides)
    return {**ingest_server_options(settings, app), "log_config": uvicorn_log_config()}


@pytest.fixture(scope="module")
def app(store: Store, engine_url: str) -> CollectorApp:
    return create_app(app_settings(engine_url), store)


@pytest.fixture(scope="module")
def options(app: CollectorApp) -> dict[str, object]:
    return served_options(app)


@pytest.fixture(scope="module")
def port(app: CollectorApp, options: dict[str, object]) -> Iterator[int]:
    """The collector served by uvicorn as `collector serve` configures it, 1 s deadlines."""
    with BackgroundServer(QuietDisconnects(app), **options) as server:
        yield server.port


@pytest.fixture
def refusals(options: dict[str, object]) -> Counter[str]:
    """The served protocol's counts of refused requests, by reason (for /metrics)."""
    protocol = options["http"]
    assert isinstance(protocol, type) and issubclass(protocol, LimitedHttpProtocol)
    return protocol.refusals


def test_a_request_within_the_limits_is_accepted_even_in_pieces(port: int) -> None:
    whole = request_bytes()
    with connect(port) as connection:
        connection.sendall(whole[:40])
        time.sleep(0.3)
        connection.sendall(whole[40:-10])  # the rest of the head and part of the body
        time.sleep(0.3)
        connection.sendall(whole[-10:])
        assert status_of(one_response(connection)) == 202
        time.sleep(0.5)  # under the keep-alive timeout: the connection is reused
        connection.sendall(whole)
        assert status_of(one_response(connection)) == 202


def test_a_large_body_does_not_count_as_head(port: int) -> None:
    body = json.dumps({"n": "pageview", "u": "https://limits.test/", "d": "limits.test",
                       "p": {f"k{index}": "x" * 1900 for index in range(20)}}).encode()
    with connect(port) as connection:
        connection.sendall(request_bytes(body))  # 38 KB in one write, a 200-byte head
        assert status_of(one_response(connection)) == 202


def test_a_head_over_the_limit_gets_431_and_the_connection_is_closed(
        port: int, refusals: Counter[str]) -> None:
    before = refusals[HEADER_TOO_LARGE]
    with connect(port) as connection:
        connection.sendall(request_bytes(user_agent=CHROME_UA + " " + "x" * 40_000))
        response = until_closed(connection, SLACK)
    assert status_of(response) == 431
    assert refusals[HEADER_TOO_LARGE] == before + 1


def test_an_unfinished_head_is_refused_as_soon_as_it_passes_the_limit(
        port: int, refusals: Counter[str]) -> None:
    before = refusals[HEADER_TOO_LARGE]
    started = time.monotonic()
    with connect(port) as connection:
        # No line end ever: httptools alone would buffer the header whatever its size.
        connection.sendall(b"POST /api/event HTTP/1.1\r\nHost: limits.test\r\nX-Pad: "
                           + b"x" * 40_000)
        response = until_closed(connection, SLACK)
    assert status_of(response) == 431
    assert time.monotonic() - started < TIMEOUT  # refused for its size, before the deadline
    assert refusals[HEADER_TOO_LARGE] == before + 1


def test_idle_connections_are_closed_at_the_header_deadline(port: int) -> None:
    opened = {}
    for _ in range(1000):
        connection = connect(port)
        opened[connection] = time.monotonic()
    closed_after: dict[socket.socket, float] = {}
    with selectors.DefaultSelector() as waiting:
        for connection in opened:
            connection.setblocking(False)
            waiting.register(connection, selectors.EVENT_READ)
        deadline = time.monotonic() + TIMEOUT + SLACK
        while len(closed_after) < len(opened) and time.monotonic() < deadline:
            for key, _ in waiting.select(timeout=0.1):
                closed = key.fileobj
                assert isinstance(closed, socket.socket)
                try:
                    assert closed.recv(1024) == b""  # closed without a word
                except ConnectionResetError:
                    pass
                closed_after[closed] = time.monotonic() - opened[closed]
                waiting.unregister(closed)
    for connection in opened:
        connection.close()
    assert len(closed_after) == 1000
    assert min(closed_after.values()) > TIMEOUT * 0.9


def test_a_head_trickled_a_byte_at_a_time_is_cut_off_at_its_deadline(
        port: int, refusals: Counter[str]) -> None:
    before = refusals[HEADER_TIMEOUT]
    head = request_bytes()
    with connect(port) as connection:
        started = time.monotonic()
        for byte in head[:80]:  # 8 s of trickling, were it not cut off
            if readable(connection):
                break  # the answer is in: sending more would only reset the connection
            connection.sendall(bytes([byte]))
            time.sleep(0.1)
        response = until_closed(connection, TIMEOUT + SLACK)
    assert status_of(response) == 408
    assert time.monotonic() - started < TIMEOUT + SLACK  # each byte did not push it back
    assert refusals[HEADER_TIMEOUT] == before + 1


def test_a_slow_body_gets_408_and_no_error_is_logged(
        port: int, refusals: Counter[str], caplog: pytest.LogCaptureFixture) -> None:
    before = refusals[BODY_TIMEOUT]
    with no_errors_logged(caplog), connect(port) as connection:
        connection.sendall(request_bytes(b'{"n":', length=len(EVENT)))
        response = until_closed(connection, TIMEOUT + SLACK)
    assert status_of(response) == 408
    assert refusals[BODY_TIMEOUT] == before + 1


def test_a_client_leaving_mid_body_is_a_debug_line(
        port: int, caplog: pytest.LogCaptureFixture) -> None:
    with no_errors_logged(caplog):
        with connect(port) as connection:
            connection.sendall(request_bytes(b'{"n":', length=len(EVENT)))
        wait_for_record(caplog, "client went away before its request was read")


def test_a_keep_alive_connection_left_idle_is_closed(port: int) -> None:
    with connect(port) as connection:
        connection.sendall(request_bytes())
        assert status_of(one_response(connection)) == 202
        started = time.monotonic()
        assert until_closed(connection, 1 + SLACK) == b""
    assert time.monotonic() - started > 0.9


def test_a_connection_in_use_outlives_the_keep_alive_timeout(port: int) -> None:
    """The keep-alive timer counts from the last answer: requests every 0.4 s for longer
    than the 1 s timeout, events and others, keep the connection open."""
    health = b"GET /healthz HTTP/1.1\r\nHost: limits.test\r\n\r\n"
    with connect(port) as connection:
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            connection.sendall(request_bytes())
            assert status_of(one_response(connection)) == 202
            connection.sendall(health)
            assert status_of(one_response(connection)) == 200
            time.sleep(0.4)
        assert until_closed(connection, 1 + SLACK) == b""


def test_requests_beyond_the_connection_cap_get_503(store: Store, engine_url: str) -> None:
    app = create_app(app_settings(engine_url), store)
    with BackgroundServer(QuietDisconnects(app), **served_options(app, max_connections=3)) \
            as server:
        idle = [connect(server.port) for _ in range(3)]
        with connect(server.port) as connection:
            connection.sendall(request_bytes())
            assert status_of(until_closed(connection, SLACK)) == 503
        for connection in idle:
            connection.close()


def test_collector_serve_applies_the_limits(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # The options above are the ones `collector serve` passes, read from its settings.
    monkeypatch.setenv("COLLECTOR_HEADER_TIMEOUT", "1")
    monkeypatch.setenv("COLLECTOR_MAX_HEADER_BYTES", "4096")
    monkeypatch.setenv("COLLECTOR_LOG_LEVEL", "debug")
    data_dir, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    with serving(data_dir, port, log):
        with connect(port) as connection:
            connection.sendall(request_bytes(user_agent=CHROME_UA + " " + "x" * 5000))
            assert status_of(until_closed(connection, SLACK)) == 431
        # The app never saw that request; /metrics counts it all the same.
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert 'collector_connections_refused_total{reason="header-too-large"} 1.0' in \
            metrics.read().decode()
        with connect(port) as idle:
            assert until_closed(idle, 1 + SLACK) == b""
        with connect(port) as connection:
            connection.sendall(request_bytes(b'{"n":', length=len(EVENT)))
        deadline = time.monotonic() + SLACK
        while "client went away" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    output = log.read_text()
    assert "client went away before its request was read" in output
    assert "ERROR" not in output and "Traceback" not in output


@contextmanager
def no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fails the test if the block, or the server meanwhile, logs an error."""
    # uvicorn's loggers may not propagate (another test's server configured them).
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG, logger="collector.limits")
    caplog.set_level(logging.DEBUG, logger="collector.event_protocol")  # events' own path
    try:
        yield
        time.sleep(0.2)  # the server handles the disconnect on its own thread
    finally:
        server_log.removeHandler(caplog.handler)
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert not errors, errors


def wait_for_record(caplog: pytest.LogCaptureFixture, text: str) -> None:
    deadline = time.monotonic() + SLACK
    while not any(text in record.getMessage() for record in caplog.records):
        assert time.monotonic() < deadline, [record.getMessage() for record in caplog.records]
        time.sleep(0.05)
    assert all(record.levelno == logging.DEBUG for record in caplog.records
               if text in record.getMessage())

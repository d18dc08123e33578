"""Events answered by the HTTP protocol itself (collector.event_protocol), over real sockets:
the same answers as through ASGI, keep-alive, pipelining in order, the cases it leaves to
ASGI (Expect: 100-continue, a query string, a request still in flight), bodies in pieces
or chunked, 413, Connection: close and HTTP/1.0, and every 202 stored once."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest

from collector.app import CollectorApp, create_app
from collector.event_protocol import IngestProtocol, ingest_server_options
from collector.limits import QuietDisconnects
from collector.logs import uvicorn_log_config
from collector.settings import Settings
from collector.storage import Store
from tests.browser_support import BackgroundServer
from tests.conftest import CHROME_UA, app_settings

BODY_LIMIT = 4096


def event(site: str, page: str = "/") -> bytes:
    return json.dumps({"n": "pageview", "u": f"https://{site}{page}", "d": site}).encode()


def post(body: bytes, *, target: str = "/api/event", user_agent: str = CHROME_UA,
         extra: str = "", version: str = "1.1") -> bytes:
    return (f"POST {target} HTTP/{version}\r\nHost: protocol.test\r\nContent-Type: text/plain"
            f"\r\nUser-Agent: {user_agent}\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
            ).encode() + body


@pytest.fixture(scope="module")
def app(store: Store, engine_url: str) -> CollectorApp:
    return create_app(app_settings(engine_url, body_limit=BODY_LIMIT), store)


@pytest.fixture(scope="module")
def port(app: CollectorApp) -> Iterator[int]:
    settings = Settings.from_env({}, body_limit=BODY_LIMIT)
    options = {**ingest_server_options(settings, app), "log_config": uvicorn_log_config()}
    protocol = options["http"]
    assert isinstance(protocol, type) and issubclass(protocol, IngestProtocol)
    with BackgroundServer(QuietDisconnects(app), **options) as server:
        yield server.port


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


class Responses:
    """Responses read one by one from a connection: (status, headers, body)."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.buffer = b""

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines)
        headers = {name.lower(): value for name, value in headers.items()}
        length = int(headers.get("content-length", 0))
        while len(self.buffer) < length:
            self._receive()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split(" ")[1]), headers, body

    def closed(self) -> bool:
        self.connection.settimeout(5)
        try:
            return self.connection.recv(1) == b""
        except ConnectionResetError:
            return True

    def _receive(self) -> None:
        chunk = self.connection.recv(65536)
        assert chunk, f"closed early, after {self.buffer!r}"
        self.buffer += chunk


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    with connect(port) as connection:
        connection.sendall(request)
        return Responses(connection).next()


def stored(app: CollectorApp, store: Store, site: str) -> int:
    app.state.writer.flush()
    return int(store.rows("SELECT count() FROM events WHERE site = {site:String}",
                          {"site": site})[0][0])


def without_date(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name != "date"}


@pytest.mark.parametrize("case", ["accepted", "dropped", "invalid", "too-large"])
def test_answers_are_those_of_the_asgi_path(port: int, case: str) -> None:
    """The same request, answered by the protocol and (a query string sends it there) by
    the app through ASGI: the same status, headers and body."""
    body, user_agent, extra = {
        "accepted": (event("same.test"), CHROME_UA, ""),
        "dropped": (event("same.test"), "curl/8.5.0", ""),
        "invalid": (b'{"n": "pageview"}', CHROME_UA, ""),
        "too-large": (b"x" * (BODY_LIMIT + 1), CHROME_UA, ""),
    }[case]
    fast = exchange(port, post(body, user_agent=user_agent, extra=extra))
    through_asgi = exchange(port, post(body, target="/api/event?via=asgi",
                                       user_agent=user_agent, extra=extra))
    assert fast[0] == through_asgi[0] == {"accepted": 202, "dropped": 202, "invalid": 400,
                                          "too-large": 413}[case]
    assert fast[2] == through_asgi[2]
    fast_headers, asgi_headers = without_date(fast[1]), without_date(through_asgi[1])
    if case == "too-large":  # the protocol closes the connection: its body was not read
        assert fast_headers.pop("connection") == "close"
    assert fast_headers == asgi_headers
    assert "date" in fast[1]


def test_keep_alive_and_pipelined_requests_are_answered_in_order(
        app: CollectorApp, store: Store, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    answered_here = []
    answer = app.answer_event_request
    monkeypatch.setattr(app, "answer_event_request",
                        lambda *arguments: answered_here.append(1) or answer(*arguments))
    with connect(port) as connection:
        responses = Responses(connection)
        for number in range(3):  # one after the other on one connection
            connection.sendall(post(event("keep.test", f"/{number}")))
            assert responses.next()[0] == 202
        # Pipelined: events, a request for the app in between, an invalid event, an event.
        connection.sendall(post(event("keep.test", "/p1")) + post(event("keep.test", "/p2"))
                           + b"GET /healthz HTTP/1.1\r\nHost: protocol.test\r\n\r\n"
                           + post(b"{") + post(event("keep.test", "/p3")))
        statuses = [responses.next() for _ in range(5)]
        assert [status for status, _, _ in statuses] == [202, 202, 200, 400, 202]
        assert statuses[2][2] == b"ok" or json.loads(statuses[2][2])
    assert stored(app, store, "keep.test") == 6
    # Without ASGI: the first five; those after the health check wait for its answer,
    # through ASGI, to keep their order.
    assert len(answered_here) == 5


def test_bodies_in_pieces_and_chunked_bodies_are_read_whole(
        app: CollectorApp, store: Store, port: int) -> None:
    whole = post(event("pieces.test", "/pieces"))
    with connect(port) as connection:
        for start in range(0, len(whole), 25):
            connection.sendall(whole[start:start + 25])
            time.sleep(0.01)
        assert Responses(connection).next()[0] == 202
    body = event("pieces.test", "/chunked")
    chunked = (f"POST /api/event HTTP/1.1\r\nHost: protocol.test\r\nUser-Agent: {CHROME_UA}\r\n"
               "Transfer-Encoding: chunked\r\n\r\n").encode()
    for start in range(0, len(body), 20):
        piece = body[start:start + 20]
        chunked += f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    assert exchange(port, chunked + b"0\r\n\r\n")[0] == 202
    assert stored(app, store, "pieces.test") == 2


def test_a_chunked_body_over_the_limit_gets_413_and_the_connection_closes(port: int) -> None:
    chunk = b"x" * 1000
    request = (f"POST /api/event HTTP/1.1\r\nHost: protocol.test\r\nUser-Agent: {CHROME_UA}\r\n"
               "Transfer-Encoding: chunked\r\n\r\n").encode()
    request += (f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n") * 5 + b"0\r\n\r\n"
    with connect(port) as connection:
        connection.sendall(request)
        responses = Responses(connection)
        status, headers, body = responses.next()
        assert (status, headers["connection"]) == (413, "close")
        assert json.loads(body)["field"] == "body"
        assert responses.closed()


def test_expect_continue_is_left_to_asgi_which_sends_the_interim_answer(
        app: CollectorApp, store: Store, port: int) -> None:
    body = event("continue.test")
    head = post(b"", extra="Expect: 100-continue\r\n").replace(
        b"Content-Length: 0", f"Content-Length: {len(body)}".encode())
    with connect(port) as connection:
        connection.sendall(head)
        responses = Responses(connection)
        # The app asks for the body: uvicorn says 100 Continue first.
        while b"\r\n\r\n" not in responses.buffer:
            responses._receive()
        assert responses.buffer.startswith(b"HTTP/1.1 100 Continue\r\n")
        responses.buffer = responses.buffer.partition(b"\r\n\r\n")[2]
        connection.sendall(body)
        assert responses.next()[0] == 202
    assert stored(app, store, "continue.test") == 1


@pytest.mark.parametrize("version, extra", [("1.1", "Connection: close\r\n"), ("1.0", "")])
def test_a_connection_not_kept_alive_is_closed_after_the_answer(
        port: int, version: str, extra: str) -> None:
    with connect(port) as connection:
        connection.sendall(post(event("close.test"), extra=extra, version=version))
        responses = Responses(connection)
        status, headers, _ = responses.next()
        assert (status, headers["connection"]) == (202, "close")
        assert responses.closed()


def test_a_client_gone_mid_body_records_nothing(
        app: CollectorApp, store: Store, port: int) -> None:
    whole = post(event("gone.test"))
    with connect(port) as connection:
        connection.sendall(whole[:-5])
        time.sleep(0.2)
    time.sleep(0.2)
    assert stored(app, store, "gone.test") == 0


def test_queued_answers_go_out_before_the_400_of_a_malformed_request(
        app: CollectorApp, store: Store, port: int) -> None:
    # Answers wait for the end of the loop turn; uvicorn writes its 400 for bytes that are
    # no HTTP at once. The earlier requests' answers must still come first.
    with connect(port) as connection:
        connection.sendall(post(event("order.test", "/1")) + post(event("order.test", "/2"))
                           + b"NOT HTTP AT ALL\r\n\r\n")
        responses = Responses(connection)
        assert [responses.next()[0] for _ in range(3)] == [202, 202, 400]
        assert responses.closed()
    assert stored(app, store, "order.test") == 2


def test_connections_answered_in_one_loop_turn_each_get_their_own_answer(
        app: CollectorApp, store: Store, port: int) -> None:
    connections = [connect(port) for _ in range(24)]
    try:
        for number, connection in enumerate(connections):  # all in before any is read
            connection.sendall(post(event("turn.test", f"/{number}")))
        for connection in connections:
            status, headers, body = Responses(connection).next()
            assert (status, body) == (202, b"ok")
            assert headers["content-length"] == "2"
    finally:
        for connection in connections:
            connection.close()
    assert stored(app, store, "turn.test") == 24


def test_an_answer_leaves_only_once_its_rows_are_in_the_write_ahead_log(
        app: CollectorApp, store: Store, port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Rows are staged, then written for the whole loop turn before the answers go out.
    wal = app.state.settings.wal_path
    kept_at_commit: list[bool] = []
    commit = app.commit_events

    def commit_and_look() -> None:
        commit()
        # In the log, or (a batch cut meanwhile takes staged records along) already stored.
        kept_at_commit.append(
            any(b"/in-the-log" in path.read_bytes() for path in wal.glob("*.wal"))
            or bool(store.rows("SELECT 1 FROM events WHERE site = 'wal.test'")))

    monkeypatch.setattr(app, "commit_events", commit_and_look)
    with connect(port) as connection:
        connection.sendall(post(event("wal.test", "/in-the-log")))
        assert Responses(connection).next()[0] == 202
    assert kept_at_commit[:1] == [True]
    assert stored(app, store, "wal.test") == 1

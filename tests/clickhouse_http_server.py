"""ClickHouse's HTTP interface served from the embedded engine (chdb): a test fixture only.

No ClickHouse server can be installed where the tests run, so the ``http://`` store
path is tested against this: a process of its own on loopback that owns one data
directory (the embedded engine opens one per process) and answers what
clickhouse-connect sends a real server::

    python -m tests.clickhouse_http_server --port 8123 --data DIR [--user U --password P]

- ``GET /ping`` (and ``GET /`` without a query): ``Ok.``
- ``POST /`` (or ``GET /?query=...``): the query in the ``query`` URL parameter, the
  body, or both (the body follows the parameter, as on a server), or in a
  ``multipart/form-data`` field; ``param_NAME`` arguments bind ``{NAME:Type}``;
  every other argument that is not one of the interface's own is a setting for
  this query (``insert_deduplication_token`` included); ``database``,
  ``default_format``, ``query_id``, ``session_id``, ``session_timeout``,
  ``session_check`` and ``close_session`` mean what they mean on a server.
- ``INSERT ... FORMAT F`` followed by data (JSONColumns, Native, anything the
  engine reads) is streamed into the engine; request bodies may be chunked and
  compressed (``Content-Encoding`` lz4, zstd, gzip, deflate); answers are
  compressed when ``enable_http_compression=1`` and the client accepts one of those.
- Answers carry ``X-ClickHouse-Query-Id``, ``X-ClickHouse-Summary``,
  ``X-ClickHouse-Timezone`` and, for a result set, ``X-ClickHouse-Format``; a failed
  query answers the status a server gives its error code, with
  ``X-ClickHouse-Exception-Code`` and the body ``Code: N. DB::Exception: ... (NAME)
  (version V)``.
- ``POST /fixture/lose-insert-answers?count=N`` (a test hook, not ClickHouse's): the
  next N inserts are stored and their connections closed without an answer.
- A session (``session_id``) is an engine connection of its own: settings, the
  current database and temporary tables persist across its requests; a second
  request while one runs fails with SESSION_IS_LOCKED, as on a server; idle
  sessions close after their timeout (60 s unless asked).

What it does not emulate is listed in tests/README.md ("The ClickHouse HTTP
fixture"). ``ClickHouseHttpServer`` starts and stops the process for the tests.
"""

from __future__ import annotations

import argparse
import base64
import email.parser
import email.policy
import gzip
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

# The HTTP interface's own arguments; anything else in the URL is a setting.
INTERFACE_ARGUMENTS = frozenset({
    "query", "database", "default_format", "query_id", "session_id", "session_timeout",
    "session_check", "close_session", "user", "password", "quota_key", "compress",
    "decompress", "buffer_size", "wait_end_of_query", "client_protocol_version", "role",
    "stacktrace",
})
# A test hook, not ClickHouse's: the next N inserts are stored, then their connection is
# closed without an answer (``ClickHouseHttpServer.lose_insert_answers``).
LOSE_ANSWERS_PATH = "/fixture/lose-insert-answers"
DEFAULT_SESSION_TIMEOUT = 60.0
MAX_SESSION_TIMEOUT = 3600.0
_INSERT_WITH_DATA = re.compile(
    r"^\s*(?P<head>INSERT\s+INTO\s+.*?)\s+FORMAT\s+(?P<format>\w+)[ \t]*(?:\r?\n)?",
    re.IGNORECASE | re.DOTALL)
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_ERROR_CODE = re.compile(r"Code: (\d+)\. ")
# How a server answers an error, by the error's name (its exceptionCodeToHTTPStatus).
_STATUS_BY_ERROR = {
    401: {"REQUIRED_PASSWORD"},
    403: {"UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
          "ACCESS_DENIED"},
    400: {"BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT",
          "CANNOT_PARSE_ESCAPE_SEQUENCE", "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE",
          "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER", "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
          "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
          "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN", "UNKNOWN_ELEMENT_IN_AST",
          "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST", "TOO_BIG_AST",
          "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
          "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"},
    404: {"UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE",
          "UNKNOWN_STORAGE", "UNKNOWN_DATABASE", "UNKNOWN_SETTING",
          "UNKNOWN_DIRECTION_OF_SORTING", "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT",
          "UNKNOWN_DATABASE_ENGINE", "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"},
    408: {"TIMEOUT_EXCEEDED"},
    413: {"QUERY_IS_TOO_LARGE"},
    501: {"NOT_IMPLEMENTED"},
    503: {"SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"},
}


class QueryFailed(Exception):
    """A ClickHouse error, as the interface reports it."""

    def __init__(self, code: int, name: str, message: str) -> None:
        super().__init__(message)
        self.code, self.name = code, name


@dataclass
class Connection:
    """One engine connection; the URL settings and database now in force on it."""

    handle: Any
    lock: threading.Lock = field(default_factory=threading.Lock)
    applied: dict[str, str] = field(default_factory=dict)
    database: str = "default"
    timeout: float = DEFAULT_SESSION_TIMEOUT
    idle_since: float = field(default_factory=time.monotonic)

    def prepare(self, database: str | None, settings: dict[str, str]) -> None:
        """Make ``settings`` the URL settings in force: a server applies them to one query,
        so the previous request's are put back to their defaults."""
        if database and database != self.database:
            self.handle.query(f"USE {_quoted_identifier(database)}", "TabSeparated")
            self.database = database
        for name in [name for name in self.applied if name not in settings]:
            self.handle.query(f"SET {_setting_name(name)} = DEFAULT", "TabSeparated")
            del self.applied[name]
        for name, value in settings.items():
            if self.applied.get(name) != value:
                self.handle.query(f"SET {_setting_name(name)} = {_quoted(value)}",
                                  "TabSeparated")
                self.applied[name] = value


class Engine:
    """The embedded engine on one data directory, its sessions, and how it names errors."""

    def __init__(self, data_dir: Path) -> None:
        import chdb  # only the fixture process loads the engine

        self._connect: Callable[[], Any] = lambda: chdb.connect(  # type: ignore[no-untyped-call]
            str(data_dir))
        self._opening = threading.Lock()
        self._sessions: dict[str, Connection] = {}
        self._sessions_lock = threading.Lock()
        probe = self.open()
        version, timezone = probe.handle.query(
            "SELECT version(), timezone()", "TabSeparated").bytes().decode().split()
        self.version, self.timezone = version, timezone
        names = probe.handle.query(
            "SELECT number, errorCodeToName(number) FROM numbers(2000) "
            "WHERE errorCodeToName(number) != ''", "TabSeparated").bytes().decode()
        self.error_codes = {name: int(code) for code, name in
                            (line.split("\t") for line in names.splitlines())}
        probe.handle.close()

    def open(self) -> Connection:
        with self._opening:  # connections are opened one at a time
            return Connection(self._connect())

    @contextmanager
    def connection(self, session_id: str | None, timeout: float,
                   check: bool) -> Iterator[Connection]:
        """The session's connection (created unless ``check``), held for one request; a
        fresh one, closed after, without a session."""
        if not session_id:
            fresh = self.open()
            try:
                yield fresh
            finally:
                fresh.handle.close()
            return
        with self._sessions_lock:
            session = self._sessions.get(session_id)
            if session is None:
                if check:
                    raise self.error("SESSION_NOT_FOUND", f"Session {session_id} not found")
                session = self._sessions[session_id] = self.open()
            if not session.lock.acquire(blocking=False):
                raise self.error("SESSION_IS_LOCKED",
                                 f"Session {session_id} is locked by a concurrent client")
        session.timeout = timeout
        try:
            yield session
        finally:
            session.idle_since = time.monotonic()
            session.lock.release()

    def close_session(self, session_id: str) -> None:
        with self._sessions_lock:
            session = self._sessions.pop(session_id, None)
        if session is not None:
            with session.lock:
                session.handle.close()

    def expire_sessions(self) -> None:
        now = time.monotonic()
        with self._sessions_lock:
            expired = [name for name, session in self._sessions.items()
                       if not session.lock.locked() and now - session.idle_since > session.timeout]
        for name in expired:
            self.close_session(name)

    def close(self) -> None:
        for name in list(self._sessions):
            self.close_session(name)

    def error(self, name: str, message: str) -> QueryFailed:
        code = self.error_codes.get(name, 1000)
        return QueryFailed(code, name, f"Code: {code}. DB::Exception: {message}. ({name})")

    def failure(self, error: Exception) -> QueryFailed:
        """The engine's exception as a ClickHouse error (the message from its ``Code:``)."""
        text = str(error)
        match = _ERROR_CODE.search(text)
        if match is None:
            return self.error("STD_EXCEPTION", text)
        code = int(match.group(1))
        names = [name for name, number in self.error_codes.items() if number == code]
        return QueryFailed(code, names[0] if names else "", text[match.start():].strip())


@dataclass
class Answer:
    body: bytes
    result_format: str | None
    summary: dict[str, str]
    inserted: bool = False


def run_query(connection: Connection, text: bytes, parameters: dict[str, str],
              default_format: str | None) -> Answer:
    """Run one request's query on ``connection``: an insert with data streamed into the
    engine, anything else as SQL, its output in the query's FORMAT or the default one."""
    head = _INSERT_WITH_DATA.match(text[:65536].decode("latin-1"))
    started = time.perf_counter()
    if head is not None:
        statement = text[head.start("head"):head.end("head")].decode()
        with connection.handle.send_insert(statement, head.group("format")) as insert:
            data = text[head.end():]
            if data:
                insert.append(data)
            result = insert.finish()
        return Answer(b"", None, _summary(started, written=(result.rows_written,
                                                              result.bytes_written)), True)
    sql = text.decode()
    named = _TRAILING_FORMAT.search(sql)
    result_format = named.group(1) if named else default_format
    # Without a FORMAT a server answers TabSeparated, and names the format only when the
    # statement has a result set: with names, a result set has at least their line.
    output = connection.handle.query(sql, result_format or "TabSeparatedWithNames",
                                     params=parameters)
    body = output.bytes() or b""
    if result_format is None and body:
        body, result_format = body[body.index(b"\n") + 1:], "TabSeparated"
    return Answer(body, result_format, _summary(
        started, read=(output.rows_read(), output.bytes_read()),
        written=(output.rows_written(), output.bytes_written())))


def _summary(started: float, read: tuple[int, int] = (0, 0),
             written: tuple[int, int] = (0, 0)) -> dict[str, str]:
    # Strings, as a server writes them; what the engine does not count is left out.
    return {"read_rows": str(read[0]), "read_bytes": str(read[1]),
            "written_rows": str(written[0]), "written_bytes": str(written[1]),
            "elapsed_ns": str(int((time.perf_counter() - started) * 1e9))}


class Handler(BaseHTTPRequestHandler):
    """One HTTP connection (keep-alive); the engine and the credentials on the server."""

    protocol_version = "HTTP/1.1"
    server: FixtureServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the tests read the engine's state, not an access log

    def do_GET(self) -> None:
        arguments = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        if urlsplit(self.path).path == "/ping" or "query" not in arguments:
            self._send(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        self._serve(arguments, b"")

    def do_POST(self) -> None:
        body = _decoded(self._body(), self.headers.get("Content-Encoding"))
        arguments = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        if urlsplit(self.path).path == LOSE_ANSWERS_PATH:
            self.server.lose_insert_answers(int(arguments.get("count", "1")))
            self._send(200, b"Ok.\n", {})
            return
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            arguments.update(_form_fields(content_type, body))
            body = b""
        self._serve(arguments, body)

    def _serve(self, arguments: dict[str, str], body: bytes) -> None:
        engine = self.server.engine
        headers = {"X-ClickHouse-Query-Id": arguments.get("query_id") or str(uuid.uuid4()),
                   "X-ClickHouse-Server-Display-Name": socket.gethostname(),
                   "X-ClickHouse-Timezone": engine.timezone}
        try:
            self._authenticate(arguments)
            answer = self._answer(arguments, body)
        except QueryFailed as failed:
            message = failed.args[0]
            if "(version " not in message:
                message += f" (version {engine.version})"
            headers.update({"X-ClickHouse-Exception-Code": str(failed.code),
                            "Content-Type": "text/plain; charset=UTF-8"})
            self._send(_status_of(failed.name), message.encode() + b"\n", headers)
            return
        if answer.inserted and self.server.answer_lost():
            self.close_connection = True  # stored, but the client never hears so
            return
        headers["X-ClickHouse-Summary"] = json.dumps(answer.summary)
        if answer.result_format:
            headers["X-ClickHouse-Format"] = answer.result_format
        headers["Content-Type"] = _content_type(answer.result_format)
        self._send(200, answer.body, headers,
                   compress=arguments.get("enable_http_compression") == "1")

    def _answer(self, arguments: dict[str, str], body: bytes) -> Answer:
        """Run the request's query in its session (or a connection of its own)."""
        engine = self.server.engine
        query = arguments.get("query", "").encode()
        # The body follows the query parameter: an INSERT's data, or the rest of the SQL.
        text = query + b"\n" + body if query and body else query or body
        if not text.strip():
            raise engine.error("SYNTAX_ERROR", "Empty query")
        parameters = {name[len("param_"):]: value for name, value in arguments.items()
                      if name.startswith("param_")}
        settings = {name: value for name, value in arguments.items()
                    if name not in INTERFACE_ARGUMENTS and not name.startswith("param_")}
        session_id = arguments.get("session_id")
        try:
            timeout = min(float(arguments.get("session_timeout") or DEFAULT_SESSION_TIMEOUT),
                          MAX_SESSION_TIMEOUT)
        except ValueError:
            raise engine.error("INVALID_SESSION_TIMEOUT", "Invalid session timeout") from None
        with engine.connection(session_id, timeout,
                               arguments.get("session_check") == "1") as connection:
            try:
                connection.prepare(arguments.get("database"), settings)
                answer = run_query(connection, text, parameters, arguments.get("default_format"))
            except QueryFailed:
                raise
            except Exception as error:  # the engine's own exception
                raise engine.failure(error) from None
        if session_id and arguments.get("close_session") == "1":
            engine.close_session(session_id)
        return answer

    def _authenticate(self, arguments: dict[str, str]) -> None:
        user, password = arguments.get("user", "default"), arguments.get("password", "")
        authorization = self.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
        user = self.headers.get("X-ClickHouse-User", user)
        password = self.headers.get("X-ClickHouse-Key", password)
        if (user, password) != self.server.credentials:
            raise self.server.engine.error(
                "AUTHENTICATION_FAILED", f"{user}: Authentication failed: password is "
                "incorrect, or there is no user with such name")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, headers: dict[str, str],
              compress: bool = False) -> None:
        encoding = _response_encoding(self.headers.get("Accept-Encoding", "")) \
            if compress and body else None
        if encoding is not None:
            body = _ENCODERS[encoding](body)
            headers["Content-Encoding"] = encoding
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FixtureServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], engine: Engine,
                 credentials: tuple[str, str]) -> None:
        super().__init__(address, Handler)
        self.engine, self.credentials = engine, credentials
        self._answers_to_lose = 0
        self._losing = threading.Lock()

    def lose_insert_answers(self, count: int) -> None:
        with self._losing:
            self._answers_to_lose = count

    def answer_lost(self) -> bool:
        """True for the next inserts a test asked to lose the answer of (and counts it)."""
        with self._losing:
            if self._answers_to_lose <= 0:
                return False
            self._answers_to_lose -= 1
            return True


def _lz4() -> Any:
    import lz4.frame  # a dependency of clickhouse-connect's lz4 compression

    return lz4.frame


def _lz4_frames(body: bytes) -> bytes:
    """Every frame of ``body``: the driver compresses each block of an insert on its own."""
    parts = []
    while body:
        decompressor = _lz4().LZ4FrameDecompressor()
        parts.append(decompressor.decompress(body))
        body = decompressor.unused_data
    return b"".join(parts)


def _zstd() -> Any:
    from backports import zstd  # clickhouse-connect's own zstd, before Python 3.14

    return zstd


_DECODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.decompress, "deflate": zlib.decompress, "lz4": _lz4_frames,
    "zstd": lambda body: bytes(_zstd().decompress(body)),
}
_ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress, "deflate": zlib.compress,
    "lz4": lambda body: bytes(_lz4().compress(body)),
    "zstd": lambda body: bytes(_zstd().compress(body)),
}


def _decoded(body: bytes, encoding: str | None) -> bytes:
    if not encoding or encoding == "identity":
        return body
    return _DECODERS[encoding.strip().lower()](body)


def _response_encoding(accepted: str) -> str | None:
    for name in (part.split(";")[0].strip().lower() for part in accepted.split(",")):
        if name in _ENCODERS:
            return name
    return None


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    fields = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode() if isinstance(payload, bytes) else ""
    return fields


def _status_of(error_name: str) -> int:
    return next((status for status, names in _STATUS_BY_ERROR.items() if error_name in names),
                500)


def _content_type(result_format: str | None) -> str:
    if result_format is None:
        return "text/plain; charset=UTF-8"
    if result_format.startswith(("TabSeparated", "TSV")):
        return "text/tab-separated-values; charset=UTF-8"
    if result_format.startswith("CSV"):
        return "text/csv; charset=UTF-8; header=absent"
    if result_format.startswith("JSON"):
        return "application/json; charset=UTF-8"
    return "application/octet-stream"


def _setting_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise QueryFailed(115, "UNKNOWN_SETTING",
                          f"Code: 115. DB::Exception: Unknown setting {name!r}. (UNKNOWN_SETTING)")
    return name


def _quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _quoted_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def serve(port: int, data_dir: Path, credentials: tuple[str, str],
          host: str = "127.0.0.1", engine_class: type[Engine] = Engine) -> None:
    """Serve until SIGTERM or SIGINT, then close every session."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = engine_class(data_dir)
    server = FixtureServer((host, port), engine, credentials)
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        stopping.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def expire() -> None:
        while not stopping.wait(1.0):
            engine.expire_sessions()

    threading.Thread(target=expire, daemon=True).start()
    print(f"serving ClickHouse {engine.version} over HTTP on {host}:{port} from {data_dir}",
          flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
        engine.close()


class ClickHouseHttpServer:
    """The fixture process for the tests: started, stopped, killed and started again on one
    port and one data directory; its output goes to ``log``."""

    module = "tests.clickhouse_http_server"  # what the process runs (``python -m``)

    def __init__(self, data_dir: Path, port: int, log: Path, user: str = "default",
                 password: str = "") -> None:
        self.data_dir, self.port, self.log = data_dir, port, log
        self.user, self.password = user, password
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        credentials = "" if (self.user, self.password) == ("default", "") else \
            f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@"
        return f"http://{credentials}127.0.0.1:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module, "--port", str(self.port),
                 "--data", str(self.data_dir), "--user", self.user,
                 "--password", self.password],
                cwd=Path(__file__).resolve().parents[1], stdout=output,
                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the ClickHouse HTTP fixture did not start: "
                                   f"{self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/ping",
                                        timeout=1) as response:
                return bool(response.read() == b"Ok.\n")
        except OSError:
            return False

    def lose_insert_answers(self, count: int) -> None:
        """Store the next ``count`` inserts but close their connections unanswered, as a
        network that fails after the server committed."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{LOSE_ANSWERS_PATH}?count={count}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def stop(self) -> None:
        """SIGTERM, and wait for the engine to close."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def kill(self) -> None:
        """SIGKILL: every connection drops at once, as when the network goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=60)

    def __enter__(self) -> ClickHouseHttpServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: list[str] | None = None, engine_class: type[Engine] = Engine) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, required=True, help="the engine's data directory")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    options = parser.parse_args(argv)
    serve(options.port, options.data.resolve(), (options.user, options.password), options.host,
          engine_class)


if __name__ == "__main__":
    main()

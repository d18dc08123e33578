"""The one place that talks to ClickHouse through ``clickhouse_connect``.

``Store`` wraps a client, binds every parameter, and translates driver errors
into ``collector.errors``. The same SQL runs on the embedded engine
(``chdb://DIR``) and on a server (``http(s)://...``); the only differences are
opening the data directory (one owner process, guarded by a lock file here) and
the database to create before connecting (a server needs it created through a
client connected to ``default``).

A client takes one call at a time, so a store opened with several connections
runs that many at once (the reports' store: one slow report does not hold up the
others, nor the readiness probe). ``QueryLimits`` bound every SELECT of a store
(the reports'): ClickHouse stops a query at the first limit it reaches, and the
error says which one (``QueryLimitExceeded``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import re
import threading
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import clickhouse_connect
import msgspec
from clickhouse_connect.driver.exceptions import ClickHouseError, OperationalError

from collector import lockfile
from collector.errors import (
    DataDirectoryBusy,
    QueryLimitExceeded,
    StorageError,
    StorageUnavailable,
)

# Lock files of embedded data directories this process owns, by resolved path.
_OWNED_DIRECTORIES: dict[Path, int] = {}
_OWNERSHIP_LOCK = threading.Lock()
LOCK_FILE_NAME = "collector.lock"
ENGINE_STATUS_FILE_NAME = "status"
_DATETIME64 = re.compile(r"^(?:Nullable\()?DateTime64\((\d+)")
_JSON = msgspec.json.Encoder()
# ClickHouse's error codes for a query stopped by one of its limits, and the limit.
_LIMIT_ERRORS = {158: "rows", 241: "memory", 159: "time", 160: "time"}
# A server the driver cannot reach is named with the request's URL, whose query string
# holds the bound parameters (a salt being written among them), settings and session.
_URL_QUERY = re.compile(r"\?[^\s'\"]*")


class _WithoutQueryStrings(logging.Filter):
    """urllib3 logs each request it retries with its URL, query string included."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _URL_QUERY.sub("", record.getMessage()), None
        return True


@dataclass(frozen=True)
class QueryLimits:
    """What one SELECT may spend before ClickHouse stops it."""

    seconds: float
    memory_bytes: int
    rows: int

    def settings(self) -> dict[str, Any]:
        return {"max_execution_time": self.seconds, "max_memory_usage": self.memory_bytes,
                "max_rows_to_read": self.rows}

    def allowed(self, limit: str) -> float:
        """The value of ``limit`` (rows, memory, time); 0 for one that is not a setting."""
        return {"rows": self.rows, "memory": self.memory_bytes, "time": self.seconds}.get(limit, 0)


class Store:
    """Connections to one ClickHouse database (embedded or server)."""

    def __init__(self, clients: Sequence[Any], database: str, url: str,
                 limits: QueryLimits | None = None) -> None:
        # A client is not safe for concurrent calls (the chdb one, nor an HTTP session):
        # each call takes an idle one, waiting while all are busy.
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()
        for client in clients:
            self._idle.put(client)
        self._connections = len(clients)
        self.database = database
        self.url = url
        self.embedded = url.startswith("chdb://")
        self.limits = limits
        self._scales: dict[str, dict[str, int]] = {}

    def command(self, sql: str, parameters: dict[str, Any] | None = None,
                settings: dict[str, Any] | None = None) -> Any:
        with self._client() as client:
            return client.command(sql, parameters=parameters, settings=settings)

    def rows(self, sql: str, parameters: dict[str, Any] | None = None,
             settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._client() as client:
            result = client.query(sql, parameters=parameters, settings=self._bounded(settings))
            return list(result.result_rows)

    def query(self, sql: str, parameters: dict[str, Any] | None = None,
              settings: dict[str, Any] | None = None) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Column names and rows."""
        with self._client() as client:
            result = client.query(sql, parameters=parameters, settings=self._bounded(settings))
            return list(result.column_names), list(result.result_rows)

    def stream_columns(self, sql: str, parameters: dict[str, Any] | None = None,
                       settings: dict[str, Any] | None = None,
                       strings_as_bytes: bool = False
                       ) -> Generator[list[Sequence[Any]], None, None]:
        """The result block by block (``max_block_size`` rows), each a list of columns,
        read from ClickHouse only as the caller consumes them; close the iterator (or
        consume it) to end the query.

        The connection is held for the whole stream: a long one should have a
        connection of its own (``open_store`` again), so other callers don't wait.
        ``strings_as_bytes`` leaves String values undecoded, for text written out as is.
        """
        formats = {"String": "bytes"} if strings_as_bytes else None
        with self._client() as client:
            with client.query_column_block_stream(
                    sql, parameters=parameters, settings=self._bounded(settings),
                    query_formats=formats) as blocks:
                yield from blocks

    def insert_columns(self, table: str, column_names: Sequence[str],
                       columns: Sequence[Sequence[Any]], token: str | None = None) -> None:
        """Insert one block given column by column; ``token`` makes a replay a no-op.

        DateTime64 columns take integer ticks (milliseconds for ``DateTime64(3)``). The
        block travels as ``JSONColumns`` encoded by msgspec in C: several times cheaper
        than the driver's per-value Native serialization, and ClickHouse parses it
        without holding Python's GIL, so ingest keeps serving while a batch goes in.
        """
        settings = _insert_settings(token)
        scales = self._tick_scales(table)
        # Encoded column by column: each call holds the GIL only briefly, so the event
        # loop keeps answering while a large batch is prepared.
        parts = []
        for name, values in zip(column_names, columns):
            scale = scales.get(name)
            encoded = _JSON.encode([tick / scale for tick in values] if scale else values)
            parts.append(b'"' + name.encode() + b'":' + encoded)
        payload = b"{" + b",".join(parts) + b"}"
        with self._client() as client:
            client.raw_insert(table, list(column_names), insert_block=payload,
                              settings=settings, fmt="JSONColumns")

    def raw_rows(self, sql: str, parameters: dict[str, Any] | None = None,
                 fmt: str = "Native") -> bytes:
        """The result as ClickHouse writes it in ``fmt``, never decoded here: rows moved from
        one store to another keep every type, aggregate states included."""
        with self._client() as client:
            return bytes(client.raw_query(sql, parameters=parameters, fmt=fmt))

    def insert_raw(self, table: str, column_names: Sequence[str], payload: bytes,
                   fmt: str = "Native", token: str | None = None) -> None:
        """Insert rows ClickHouse wrote in ``fmt`` (``raw_rows``); ``token`` makes a replay a
        no-op."""
        with self._client() as client:
            client.raw_insert(table, list(column_names), insert_block=payload,
                              settings=_insert_settings(token), fmt=fmt)

    def _tick_scales(self, table: str) -> dict[str, int]:
        """Ticks per second of each DateTime64 column of ``table`` (cached)."""
        scales = self._scales.get(table)
        if scales is None:
            rows = self.rows(
                "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                "AND table = {table:String}", {"table": table})
            scales = {name: 10 ** int(match.group(1)) for name, kind in rows
                      if (match := _DATETIME64.search(kind))}
            if rows:  # a missing table (an outage) is asked again next time
                self._scales[table] = scales
        return scales

    def close(self) -> None:
        closed = [self._idle.get() for _ in range(self._connections)]  # each once its call is over
        for client in closed:
            client.close()
            # Back in the queue, closed: a later call fails in the driver (StorageError)
            # instead of waiting forever for an idle client.
            self._idle.put(client)

    @contextmanager
    def _client(self) -> Iterator[Any]:
        """An idle client for one call, its driver errors translated."""
        client = self._idle.get()
        try:
            with _translated_errors(self.limits):
                yield client
        finally:
            self._idle.put(client)

    def _bounded(self, settings: dict[str, Any] | None) -> dict[str, Any] | None:
        """``settings`` with the store's limits, which no caller loosens."""
        if self.limits is None:
            return settings
        return {**(settings or {}), **self.limits.settings()}


def _insert_settings(token: str | None) -> dict[str, Any]:
    # On a cluster's Distributed tables, answer only once every shard has its rows: the
    # write-ahead log drops a batch on this answer, so a queue on one node must not be
    # the batch's only copy (docs/deployment.md, "Inserts"). One node ignores it.
    settings: dict[str, Any] = {"insert_distributed_sync": 1}
    if token:
        # Rollups fed by materialized views must not count a replayed block twice either.
        settings.update({"insert_deduplication_token": token,
                         "deduplicate_blocks_in_dependent_materialized_views": 1})
    return settings


def open_store(url: str, database: str | None = None, connections: int = 1,
               limits: QueryLimits | None = None) -> Store:
    """Connect to the store at ``url`` with ``connections`` clients, creating the database
    when missing; ``limits`` bound each of its SELECTs."""
    parts = urlsplit(url)
    if parts.scheme == "chdb":
        return _open_embedded(url, database or "collector", connections, limits)
    if parts.scheme in ("http", "https"):
        return _open_server(url, database, connections, limits)
    raise StorageError(
        f"COLLECTOR_CLICKHOUSE_URL: unsupported scheme {parts.scheme!r} "
        "(use chdb://DIR or http(s)://user:password@host:8123/database)"
    )


def _open_embedded(url: str, database: str, connections: int = 1,
                   limits: QueryLimits | None = None) -> Store:
    directory = Path(url[len("chdb://"):]).expanduser().resolve()
    directory.mkdir(parents=True, exist_ok=True)
    _claim_directory(directory)
    with _translated_errors():
        bootstrap = clickhouse_connect.get_client(dsn=f"chdb://{directory}")
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}")
        clients = [clickhouse_connect.get_client(dsn=f"chdb://{directory}", database=database)
                   for _ in range(connections)]
    return Store(clients, database, f"chdb://{directory}", limits)


def _open_server(url: str, database: str | None, connections: int = 1,
                 limits: QueryLimits | None = None) -> Store:
    _quiet_request_logs()
    parts = urlsplit(url)
    database = database or parts.path.strip("/") or "collector"
    options: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or (8443 if parts.scheme == "https" else 8123),
        "username": unquote(parts.username or "default"),
        "password": unquote(parts.password or ""),
        "secure": parts.scheme == "https",
    }
    with _translated_errors():
        bootstrap = clickhouse_connect.get_client(**options)
        bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {_identifier(database)}")
        bootstrap.close()
        clients = [clickhouse_connect.get_client(database=database, **options)
                   for _ in range(connections)]
    return Store(clients, database, url, limits)


def _quiet_request_logs() -> None:
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(kept, _WithoutQueryStrings) for kept in urllib3_log.filters):
        urllib3_log.addFilter(_WithoutQueryStrings())


def _claim_directory(directory: Path) -> None:
    """Hold an exclusive lock on the data directory for this process's lifetime."""
    with _OWNERSHIP_LOCK:
        if directory in _OWNED_DIRECTORIES:
            return
        if _OWNED_DIRECTORIES:
            owned = next(iter(_OWNED_DIRECTORIES))
            raise StorageError(
                f"this process already runs the embedded engine on {owned}; "
                f"one process opens one data directory (asked for {directory})"
            )
        descriptor = lockfile.acquire(directory / LOCK_FILE_NAME)
        if descriptor is None:
            raise DataDirectoryBusy(
                f"the data directory {directory} is in use by pid "
                f"{lockfile.owner(directory / LOCK_FILE_NAME)} "
                "(a running `collector serve`?); stop it first, or point "
                "COLLECTOR_CLICKHOUSE_URL at a ClickHouse server to share data"
            )
        try:
            _refuse_a_foreign_engine(directory)
        except DataDirectoryBusy:
            os.close(descriptor)
            raise
        lockfile.record_owner(descriptor)
        _OWNED_DIRECTORIES[directory] = descriptor


def _refuse_a_foreign_engine(directory: Path) -> None:
    """DataDirectoryBusy when another program's engine (chdb, clickhouse-local) runs in
    ``directory``, which this process has not opened yet.

    Such an engine holds its ``status`` file locked; chdb itself would only fail with
    "Error initializing EmbeddedServer".
    """
    try:
        descriptor = os.open(directory / ENGINE_STATUS_FILE_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        status = os.read(descriptor, 256).decode(errors="replace").strip()
        raise DataDirectoryBusy(
            f"the data directory {directory} is in use by another ClickHouse engine "
            f"({status.splitlines()[0] if status else 'pid unknown'}); stop it first, or "
            "point COLLECTOR_CLICKHOUSE_URL at a ClickHouse server to share data"
        ) from None
    finally:
        os.close(descriptor)  # also drops the probe's lock, if it got one


def _identifier(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise StorageError(f"invalid database name {name!r}: use letters, digits and _")
    return f"`{name}`"


@contextmanager
def _translated_errors(limits: QueryLimits | None = None) -> Iterator[None]:
    """Driver exceptions become the collector's own."""
    try:
        yield
    except ClickHouseError as error:
        # A stream stopped by a limit fails as an OperationalError: the limit comes first.
        limit = _limit_reached(error)
        if limits is not None and limit is not None:
            raise QueryLimitExceeded(str(error), limit, limits.allowed(limit)) from error
        if isinstance(error, OperationalError):
            # Promise: a salt never reaches a log line, nor any other parameter of a query
            # (not even in a traceback, hence no chained driver error).
            reason = _URL_QUERY.sub("", str(error))
            raise StorageUnavailable(f"ClickHouse is unreachable: {reason}") from None
        raise StorageError(str(error)) from error


def _limit_reached(error: ClickHouseError) -> str | None:
    """rows, memory, time (or engine memory): the limit that stopped the query, if one did."""
    limit = _LIMIT_ERRORS.get(getattr(error, "code", None) or 0)
    # The whole engine short of memory is not this query's limit: a later try may pass.
    if limit == "memory" and "query memory limit" not in str(error).lower():
        return "engine memory"
    return limit

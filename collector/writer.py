"""The write buffer: rows wait in memory and go to ClickHouse in columnar batches.

Accepting an event only appends to a list (under a lock); a background thread
flushes by row count, by size, by interval and at shutdown, so inserts never run
on the event loop. Each batch carries an ``insert_deduplication_token`` per
table: when an insert fails ambiguously and is retried, ClickHouse stores it
once. A batch ClickHouse cannot take goes to the disk spool (``spool.py``) and
is replayed, with the same tokens, when the store is back — also across a
restart. The memory buffer is bounded: when it is full (store down and spool
full, or no spool), ``add`` raises ``OverloadedError`` and ingest answers 503,
so nothing accepted is ever dropped for lack of room.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from collector.errors import OverloadedError, SpoolFull, StorageError
from collector.spool import Spool, SpooledBatch
from collector.storage import Store

logger = logging.getLogger("collector.writer")
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass
class _Batch:
    rows: dict[str, Any]  # table → rows (tuples, or lists when read back from the spool)
    token: str = field(default_factory=lambda: uuid.uuid4().hex)
    written_tables: set[str] = field(default_factory=set)
    attempts: int = 0


@dataclass
class WriterStats:
    accepted: dict[str, int] = field(default_factory=dict)  # rows per table
    written: dict[str, int] = field(default_factory=dict)
    failed_attempts: int = 0
    last_error: str = ""


class Writer:
    def __init__(self, store: Store, tables: Mapping[str, Sequence[str]], *,
                 flush_interval: float = 1.0, flush_rows: int = 20000,
                 flush_bytes: int = 8 << 20, max_rows: int = 500000,
                 spool: Spool | None = None) -> None:
        self._store = store
        self._tables = {name: tuple(columns) for name, columns in tables.items()}
        self._flush_interval = flush_interval
        self._flush_rows = flush_rows
        self._flush_bytes = flush_bytes
        self._max_rows = max_rows
        self._spool = spool
        self._buffer: dict[str, list[tuple[Any, ...]]] = {name: [] for name in self._tables}
        self._buffered_rows = 0
        self._buffered_bytes = 0
        self._pending: list[_Batch] = []  # taken from the buffer, not yet fully written
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = WriterStats()

    @property
    def buffered_rows(self) -> int:
        return self._buffered_rows + sum(
            len(rows) for batch in self._pending for rows in batch.rows.values())

    def add(self, rows_by_table: Mapping[str, Sequence[tuple[Any, ...]]], size: int) -> None:
        """Accept rows for one request, all or nothing. ``size`` approximates their bytes."""
        count = sum(len(rows) for rows in rows_by_table.values())
        with self._lock:
            if self._buffered_rows + count > self._max_rows or self._stopping:
                raise OverloadedError("the write buffer is full; retry shortly")
            accepted = self.stats.accepted
            for table, rows in rows_by_table.items():
                self._buffer[table].extend(rows)
                accepted[table] = accepted.get(table, 0) + len(rows)
            self._buffered_rows += count
            self._buffered_bytes += size
            full = (self._buffered_rows >= self._flush_rows
                    or self._buffered_bytes >= self._flush_bytes)
        if full:
            self._wake.set()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, write everything buffered (retrying up to ``timeout`` seconds)."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + timeout
        while self.buffered_rows and time.monotonic() < deadline:
            if not self._flush_once():
                time.sleep(0.5)
        if self.buffered_rows and self._spool is not None:
            with self._flush_lock:
                self._take_buffer()
                self._spill()
        if self.buffered_rows:
            logger.error("shutdown: %d rows could not be written: %s",
                         self.buffered_rows, self.stats.last_error)

    def flush(self) -> None:
        """Write everything buffered and spooled now (tests, the CLI); raises on failure."""
        if not self._flush_once():
            raise StorageError(self.stats.last_error)

    @property
    def spooled_batches(self) -> int:
        return len(self._spool.files()) if self._spool is not None else 0

    def _run(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            if self._stopping:
                return
            if not self._flush_once():
                delay = RETRY_DELAYS[min(self.stats.failed_attempts, len(RETRY_DELAYS)) - 1]
                time.sleep(delay)

    def _flush_once(self) -> bool:
        """Write the buffer, then anything spooled; False on failure (the rest is kept)."""
        with self._flush_lock:
            self._take_buffer()
            while self._pending:
                if not self._write(self._pending[0]):
                    self._spill()
                    return False
                self._pending.pop(0)
            return self._replay_spool()

    def _take_buffer(self) -> None:
        with self._lock:
            if self._buffered_rows:
                self._pending.append(_Batch(self._buffer))
                self._buffer = {name: [] for name in self._tables}
                self._buffered_rows = 0
                self._buffered_bytes = 0

    def _spill(self) -> None:
        """Move pending batches from memory to the disk spool, as far as it has room."""
        if self._spool is None:
            return
        while self._pending:
            batch = self._pending[0]
            try:
                self._spool.save(SpooledBatch(batch.token, batch.rows,
                                              sorted(batch.written_tables)))
            except (SpoolFull, OSError) as error:
                logger.warning("keeping %d batch(es) in memory: %s", len(self._pending), error)
                return
            self._pending.pop(0)

    def _replay_spool(self) -> bool:
        if self._spool is None:
            return True
        for path in self._spool.files():
            spooled = self._spool.load(path)
            batch = _Batch(spooled.rows, spooled.token, set(spooled.written_tables))
            if not self._write(batch):
                if batch.written_tables != set(spooled.written_tables):
                    spooled.written_tables = sorted(batch.written_tables)
                    self._spool.update(path, spooled)
                return False
            path.unlink()
            logger.info("replayed a spooled batch (%s)", path.name)
        return True

    def _write(self, batch: _Batch) -> bool:
        for table, rows in batch.rows.items():
            if not rows or table in batch.written_tables:
                continue
            columns = list(zip(*rows))
            try:
                self._store.insert_columns(table, self._tables[table], columns,
                                           token=f"{batch.token}-{table}")
            except StorageError as error:
                batch.attempts += 1
                self.stats.failed_attempts += 1
                self.stats.last_error = f"insert into {table} failed: {error}"
                logger.warning("%s (attempt %d, %d rows kept for retry)",
                               self.stats.last_error, batch.attempts, len(rows))
                return False
            batch.written_tables.add(table)
            self.stats.written[table] = self.stats.written.get(table, 0) + len(rows)
        self.stats.failed_attempts = 0
        return True

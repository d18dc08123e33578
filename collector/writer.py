"""The writer: accepted rows go to the write-ahead log, then to ClickHouse in batches.

Accepting a request's rows encodes them once, as ClickHouse reads them
(``collector.row_blocks``), and appends that to the write-ahead log (``collector.wal``)
and to a list in memory, under a lock; a background thread cuts the list into a
batch by row count, by size, by interval and at shutdown, and inserts its blocks as
they are: inserts never run on the event loop, nor does the writer's thread hold the
GIL for work per row. A batch is one sealed segment of the log, whose name gives the
batch's ``insert_deduplication_token`` (one per table): a retried insert, or the
replay of a segment ClickHouse already had when the process died, is stored once.
A segment is deleted once ClickHouse has every table of its batch.

While ClickHouse fails, batches wait in the log, not in memory: only the oldest is
held for its retries. The bound is on every row not yet written, wherever it waits
(``max_rows``), and on the log's bytes: beyond either, ``add`` raises
``OverloadedError`` and ingest answers 503, so nothing accepted is ever dropped for
lack of room. Without a log (tests, tools) batches wait in memory, within the bound.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from collector.errors import OverloadedError, StorageError
from collector.row_blocks import RowBlock, encode_rows, joined
from collector.storage import Store
from collector.wal import Segment, WriteAheadLog

logger = logging.getLogger("collector.writer")
RETRY_DELAYS = (0.1, 0.5, 1.0, 2.0, 5.0)


class WriterObserver(Protocol):
    """What the writer reports as it goes (metrics); called on the writer's thread."""

    def flushed(self, table: str, rows: int, seconds: float) -> None: ...

    def insert_failed(self, table: str) -> None: ...

    def replayed(self, batches: int) -> None: ...


class _Unobserved:
    def flushed(self, table: str, rows: int, seconds: float) -> None:
        pass

    def insert_failed(self, table: str) -> None:
        pass

    def replayed(self, batches: int) -> None:
        pass


@dataclass
class _Batch:
    rows: Mapping[str, RowBlock] | None  # None while it waits on disk only
    count: int
    token: str
    segment: Segment | None = None
    from_log: bool = False  # read back from the log: a replay
    leftover: bool = False  # left by the previous run
    written_tables: set[str] = field(default_factory=set)
    attempts: int = 0


@dataclass
class WriterStats:
    accepted: dict[str, int] = field(default_factory=dict)  # rows per table
    written: dict[str, int] = field(default_factory=dict)
    failed_attempts: int = 0  # consecutive failed inserts, 0 after a success
    last_error: str = ""
    log_bytes: int = 0  # bytes of the write-ahead log on disk


class Writer:
    def __init__(self, store: Store, tables: Mapping[str, Sequence[str]], *,
                 flush_interval: float = 1.0, flush_rows: int = 20000,
                 flush_bytes: int = 8 << 20, max_rows: int = 500000,
                 log: WriteAheadLog | None = None,
                 observer: WriterObserver | None = None) -> None:
        self._store = store
        self._tables = {name: tuple(columns) for name, columns in tables.items()}
        self._flush_interval = flush_interval
        self._flush_rows = flush_rows
        self._flush_bytes = flush_bytes
        self._max_rows = max_rows
        self._log = log
        self._observer: WriterObserver = observer or _Unobserved()
        self._buffer: dict[str, list[RowBlock]] = self._empty_buffer()
        self._buffer_rows = 0
        self._buffer_bytes = 0
        # Cut from the buffer (or left by the previous run), not yet fully written; oldest first.
        self._pending: deque[_Batch] = deque(
            _Batch(None, segment.rows, segment.token, segment, from_log=True, leftover=True)
            for segment in (log.leftovers if log is not None else ()))
        self._unwritten_rows = sum(batch.count for batch in self._pending)
        self._leftovers = len(self._pending)
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.stats = WriterStats(log_bytes=log.size_bytes if log is not None else 0)
        if self._pending:
            logger.info("the write-ahead log holds %d batch(es), %d rows, of the previous run: "
                        "replaying them", len(self._pending), self._unwritten_rows)

    @property
    def buffered_rows(self) -> int:
        """Rows accepted and not yet written, in memory or in the log."""
        return self._unwritten_rows

    @property
    def spooled_batches(self) -> int:
        """Batches cut from the buffer and not yet written (each one a segment of the log)."""
        return len(self._pending)

    def ensure_room(self, rows: int) -> None:
        """OverloadedError now if ``rows`` more rows would not be accepted: for a caller
        about to change state (the visit tracker) for rows it will ``add``."""
        self._refuse_if_full(rows, 0)

    def add(self, rows_by_table: Mapping[str, Sequence[Sequence[Any]]], size: int,
            staged: bool = False) -> None:
        """Accept rows for one request, all or nothing; ``size`` approximates their bytes.

        On return they are in the write-ahead log (when there is one): a process crash
        no longer loses them. With ``staged``, only once ``commit`` returns: the caller
        answers a group of requests after one write (``collector.event_protocol``).
        """
        blocks = {table: encode_rows(rows) for table, rows in rows_by_table.items() if rows}
        count = sum(block.rows for block in blocks.values())
        if not count:
            return
        log = self._log
        record = log.encode(blocks, count) if log is not None else b""
        with self._lock:
            self._refuse_if_full(count, len(record))
            if log is not None:
                (log.stage if staged else log.append)(record, count)
                self.stats.log_bytes = log.size_bytes
            accepted = self.stats.accepted
            buffer = self._buffer
            for table, block in blocks.items():
                buffer[table].append(block)
                accepted[table] = accepted.get(table, 0) + block.rows
            self._buffer_rows += count
            self._unwritten_rows += count
            self._buffer_bytes += size
            full = (self._buffer_rows >= self._flush_rows
                    or self._buffer_bytes >= self._flush_bytes)
        if full:
            self._wake.set()

    def commit(self) -> None:
        """Write the staged rows' records to the log (see ``add``)."""
        if self._log is not None:
            self._log.commit()

    def start(self) -> None:
        self._started = time.monotonic()
        if self._log is not None:
            self._log.start()
        if self._pending:
            self._wake.set()  # the previous run's batches first, not after an interval
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop accepting, write everything (retrying up to ``timeout`` seconds), close the
        log: what ClickHouse did not take waits there for the next start."""
        with self._lock:
            self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        deadline = time.monotonic() + timeout
        while self.buffered_rows and time.monotonic() < deadline:
            if not self._flush_once():
                time.sleep(0.5)
        if self._log is not None:
            self._log.close()
            if self.buffered_rows:
                logger.warning("shutdown: %d rows wait in the write-ahead log for the next "
                               "start: %s", self.buffered_rows, self.stats.last_error)
        elif self.buffered_rows:
            logger.error("shutdown: %d rows could not be written: %s",
                         self.buffered_rows, self.stats.last_error)

    def flush(self) -> None:
        """Write everything accepted now (tests, the CLI); raises on failure."""
        if not self._flush_once():
            raise StorageError(self.stats.last_error)

    def _empty_buffer(self) -> dict[str, list[RowBlock]]:
        return {name: [] for name in self._tables}

    def _refuse_if_full(self, rows: int, size: int) -> None:
        if self._stopping or self._unwritten_rows + rows > self._max_rows:
            raise OverloadedError("the write buffer is full; retry shortly")
        if self._log is not None:
            self._log.check_room(size)

    def _run(self) -> None:
        retry_at = 0.0
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            if self._stopping:
                return
            if time.monotonic() < retry_at:
                # Backing off: the buffer still goes to the log as batches, out of memory.
                with self._flush_lock:
                    self._cut_batch()
                    self._release_waiting()
            elif not self._flush_once():
                delay = RETRY_DELAYS[min(self.stats.failed_attempts, len(RETRY_DELAYS)) - 1]
                retry_at = time.monotonic() + delay

    def _flush_once(self) -> bool:
        """Cut the buffer into a batch, write the batches oldest first; False on failure
        (the rest waits)."""
        with self._flush_lock:
            self._cut_batch()
            replayed = 0
            try:
                while self._pending:
                    batch = self._pending[0]
                    if not self._write(batch):
                        self._release_waiting()
                        return False
                    self._pending.popleft()
                    self._finish(batch)
                    replayed += batch.from_log
                return True
            finally:
                if replayed:
                    self._observer.replayed(replayed)

    def _cut_batch(self) -> None:
        with self._lock:
            if not self._buffer_rows:
                return
            segment = self._log.seal() if self._log is not None else None
            token = segment.token if segment is not None else uuid.uuid4().hex
            blocks = {table: joined(table_blocks) for table, table_blocks in self._buffer.items()}
            self._pending.append(_Batch(blocks, self._buffer_rows, token, segment))
            self._buffer = self._empty_buffer()
            self._buffer_rows = 0
            self._buffer_bytes = 0

    def _release_waiting(self) -> None:
        """Batches behind a failing one wait in the log only; memory keeps the oldest."""
        for batch in list(self._pending)[1:]:
            if batch.segment is not None:
                batch.rows = None

    def _finish(self, batch: _Batch) -> None:
        if batch.segment is not None and self._log is not None:
            self._log.remove(batch.segment)
        with self._lock:
            self._unwritten_rows -= batch.count
            if self._log is not None:
                self.stats.log_bytes = self._log.size_bytes
        if batch.leftover:
            self._leftovers -= 1
            if not self._leftovers:
                logger.info("replayed the batches left by the previous run in %.2f s",
                            time.monotonic() - self._started)

    def _write(self, batch: _Batch) -> bool:
        rows_by_table = batch.rows
        if rows_by_table is None:
            assert self._log is not None and batch.segment is not None
            try:
                rows_by_table = batch.rows = self._log.read(batch.segment)
            except OSError as error:
                return self._failed(batch, f"reading {batch.segment.path.name} failed: {error}")
            batch.from_log = True
        for table, block in rows_by_table.items():
            if not block.rows or table in batch.written_tables:
                continue
            columns = self._tables.get(table)
            if columns is None or block.width > len(columns):
                # Only a log written by another version can hold such rows.
                logger.error("skipping %d rows for table %s: this version writes %s",
                             block.rows, table, "no such table" if columns is None
                             else f"{len(columns)} columns, not {block.width}")
                batch.written_tables.add(table)
                continue
            started = time.perf_counter()
            try:
                # Narrower rows were logged before an upgrade added columns, which are only
                # ever appended (collector.schema): they fill the first ones, and ClickHouse
                # gives the rest their defaults.
                self._store.insert_raw(table, columns[:block.width], block.data,
                                       fmt="MsgPack", token=f"{batch.token}-{table}")
            except StorageError as error:
                self._observer.insert_failed(table)
                return self._failed(batch, f"insert into {table} failed: {error}")
            self._observer.flushed(table, block.rows, time.perf_counter() - started)
            batch.written_tables.add(table)
            self.stats.written[table] = self.stats.written.get(table, 0) + block.rows
        self.stats.failed_attempts = 0
        return True

    def _failed(self, batch: _Batch, error: str) -> bool:
        batch.attempts += 1
        self.stats.failed_attempts += 1
        self.stats.last_error = error
        logger.warning("%s (attempt %d, %d rows kept for retry)", error, batch.attempts,
                       batch.count)
        return False

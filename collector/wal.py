"""The write-ahead log: every accepted row is in a file before its request is answered.

``DATA_DIR/wal`` holds segment files named ``SEQUENCE-TOKEN.wal``. The active segment
takes one record per accepted request, appended with ``os.write`` on an ``O_APPEND``
descriptor, so the rows are in the kernel before the 202 goes out and a process crash
(SIGKILL, OOM kill) loses nothing answered. The event protocol stages the records of one
event-loop turn and writes them in one ``os.write`` (``stage``, ``commit``) before it
sends their answers: one system call for the turn instead of one per event. When the
writer cuts a batch it seals the segment: from then on that file *is* the batch — its
rows in order, and in its name the deduplication token its inserts carry. The file is
deleted once ClickHouse has every table of it. At startup the segments left are replayed
with their tokens, so a batch that reached ClickHouse just before a crash is not stored
twice.

A record is its payload's length, its row count and its CRC-32 (4 bytes each), then the
payload: the request's rows by table, each table's a ``RowBlock`` (``collector.row_blocks``:
the rows as ClickHouse's MsgPack format reads them, so a replay inserts them as they are),
in a msgpack map. Records of older versions, whose rows are msgpack arrays, are read too.
A crash in mid-append leaves a torn last record, given away by its length or checksum and
ignored: its request was never answered.

A power loss can take what was appended since the last fsync: a background thread
fsyncs every ``COLLECTOR_WAL_FSYNC_INTERVAL`` seconds; 0 fsyncs each write (an append,
or a loop turn's group) before its answers (several milliseconds on most disks).

Promise: the records hold ``Event``, ``VisitRow`` and drops rows only, already
anonymized: no IP address, raw user agent or query string can be in them.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from collector import lockfile
from collector.errors import DataDirectoryBusy, LogFull, OverloadedError
from collector.row_blocks import RowBlock, encode_rows, joined
from collector.settings import Settings
from collector.spool import spooled_batches

logger = logging.getLogger("collector.wal")

SUFFIX = ".wal"
LOCK_FILE_NAME = "wal.lock"
_NAME = re.compile(r"(?P<sequence>[0-9]{12})-(?P<token>[0-9A-Za-z]+)\.wal")
_HEADER = struct.Struct("<III")  # payload length, rows, CRC-32 of the payload
FAILURE_PAUSE_SECONDS = 1.0  # after a refused group write, new records get 503 this long
_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC

BlocksByTable = dict[str, RowBlock]


@dataclass(frozen=True)
class Segment:
    """A sealed segment: one batch of the writer, waiting for ClickHouse."""

    path: Path
    token: str  # the batch's insert-deduplication token
    rows: int
    size: int  # bytes


@dataclass
class _Active:
    descriptor: int
    path: Path
    token: str
    rows: int = 0
    size: int = 0
    torn: bool = False  # a failed append could not be cut off yet


class WriteAheadLog:
    """Appends from any thread; ``seal``, ``read`` and ``remove`` from the writer's."""

    def __init__(self, directory: Path, *, max_bytes: int = 1 << 30,
                 fsync_interval: float = 1.0) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self.max_bytes = max_bytes
        self._fsync_interval = fsync_interval
        self._claim = _claim_directory(directory)
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(dict[str, Any])
        self._lock = threading.Lock()  # the active segment, the sizes, the descriptors
        self._sync_lock = threading.Lock()
        self._active: _Active | None = None
        self._staged: list[bytes] = []  # records waiting for the next commit
        self._staged_rows = 0
        self._failed_at = 0.0  # monotonic time the disk last refused a staged group
        self._unsynced: list[int] = []  # sealed descriptors, closed once fsynced
        self._dirty = False
        self._directory_dirty = False
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self.leftovers = self._scan()  # what a previous run left, oldest first
        self.size_bytes = sum(segment.size for segment in self.leftovers)
        self._next_sequence = 1 + max((_sequence(segment.path) for segment in self.leftovers),
                                      default=0)

    def encode(self, blocks: Mapping[str, RowBlock], rows: int) -> bytes:
        """One request's record (cheap, outside any lock): header and msgpack payload."""
        payload = self._encoder.encode(blocks)  # each block a [rows, width, data] array
        return _HEADER.pack(len(payload), rows, zlib.crc32(payload)) + payload

    def check_room(self, size: int) -> None:
        if self.size_bytes + size > self.max_bytes:
            raise LogFull(f"the write-ahead log in {self.directory} is full "
                          f"({self.max_bytes} bytes)")

    def append(self, record: bytes, rows: int) -> None:
        """Write ``record`` to the active segment; on return it survives a process crash.

        Raises LogFull when the log has no room, OverloadedError when the disk refuses
        (the record is then cut off again, so the segment stays readable).
        """
        with self._lock:
            self._refuse_while_failing()
            self.check_room(len(record))
            self._write([record], rows)

    def stage(self, record: bytes, rows: int) -> None:
        """Take ``record`` for the next ``commit`` (or ``seal``): a group of records costs
        one write. Its request may be answered only after that ``commit``.

        Raises LogFull when the log has no room, OverloadedError for a second after the
        disk refused a group.
        """
        with self._lock:
            self._refuse_while_failing()
            self.check_room(len(record))
            self._staged.append(record)
            self._staged_rows += rows
            self.size_bytes += len(record)

    def commit(self) -> None:
        """Write the staged records in one piece; then their requests may be answered.

        When the disk refuses, their rows are still in the writer's memory (and their
        answers go out as accepted): only a crash before the next flush would lose them.
        New records are refused for a second (503), and the failure is logged.
        """
        if not self._staged:
            return
        with self._lock:
            self._write_staged()

    def _write_staged(self) -> None:
        staged, rows = self._staged, self._staged_rows
        if not staged:
            return
        self._staged, self._staged_rows = [], 0
        self.size_bytes -= sum(map(len, staged))  # counted again once written
        try:
            self._write(staged, rows)
        except OverloadedError as error:
            self._failed_at = time.monotonic()
            logger.error("%s; %d rows are kept in memory only until the next flush, and new "
                         "events get 503 for a second", error, rows)

    def _refuse_while_failing(self) -> None:
        if self._failed_at and time.monotonic() - self._failed_at < FAILURE_PAUSE_SECONDS:
            raise OverloadedError("the write-ahead log cannot be written; retry shortly")

    def _write(self, records: list[bytes], rows: int) -> None:
        """Append ``records`` to the active segment in one write (the lock is held)."""
        data = records[0] if len(records) == 1 else b"".join(records)
        active = self._active or self._open_segment()
        try:
            if active.torn:
                os.ftruncate(active.descriptor, active.size)
                active.torn = False
            if os.write(active.descriptor, data) != len(data):
                raise OSError("short write")
            if self._fsync_interval == 0:
                os.fsync(active.descriptor)
        except OSError as error:
            _cut_off(active)
            raise OverloadedError(f"the write-ahead log cannot be written: {error}") from None
        active.rows += rows
        active.size += len(data)
        self.size_bytes += len(data)
        self._dirty = True

    def seal(self) -> Segment | None:
        """Close the active segment as one batch (None when nothing was appended); staged
        records are written first, as their rows are in the batch being cut."""
        with self._lock:
            self._write_staged()
            active, self._active = self._active, None
            if active is None:
                return None
            if self._fsync_interval == 0:
                os.close(active.descriptor)  # every append was fsynced already
            else:
                self._unsynced.append(active.descriptor)
            return Segment(active.path, active.token, active.rows, active.size)

    def read(self, segment: Segment) -> BlocksByTable:
        """The rows of ``segment`` by table, up to its first damaged record, if any."""
        merged: dict[str, list[RowBlock]] = {}
        for _rows, payload, _end in _records(segment.path.read_bytes()):
            for table, value in self._decoder.decode(payload).items():
                merged.setdefault(table, []).append(_block(value))
        return {table: joined(blocks) for table, blocks in merged.items()}

    def remove(self, segment: Segment) -> None:
        """ClickHouse has the batch: its segment goes."""
        segment.path.unlink(missing_ok=True)
        with self._lock:
            self.size_bytes -= segment.size

    def adopt(self, token: str, rows_by_table: Mapping[str, Sequence[Sequence[Any]]]) -> None:
        """Add a sealed segment holding a batch made elsewhere (an older version's spool),
        with its token: written aside, fsynced, then renamed into the log."""
        rows = sum(len(table_rows) for table_rows in rows_by_table.values())
        record = self.encode({table: encode_rows(table_rows)
                              for table, table_rows in rows_by_table.items()}, rows)
        with self._lock:
            path = self.directory / f"{self._next_sequence:012d}-{token}{SUFFIX}"
            self._next_sequence += 1
        temporary = path.with_suffix(".tmp")
        try:
            with temporary.open("xb") as output:
                output.write(record)
                output.flush()
                os.fsync(output.fileno())
            temporary.rename(path)
        finally:
            temporary.unlink(missing_ok=True)  # after a failure: no empty .tmp stays
        _fsync_directory(self.directory)
        segment = Segment(path, token, rows, len(record))
        with self._lock:
            self.leftovers.append(segment)
            self.size_bytes += segment.size

    def start(self) -> None:
        """fsync in the background every interval (with 0, each append fsyncs itself)."""
        if self._fsync_interval > 0:
            self._thread = threading.Thread(target=self._sync_every_interval, name="wal-sync",
                                            daemon=True)
            self._thread.start()

    def sync(self) -> None:
        """fsync what was appended since the last call, and the directory if it changed."""
        with self._sync_lock:
            with self._lock:
                sealed, self._unsynced = self._unsynced, []
                active = self._active.descriptor if self._active and self._dirty else None
                directory, self._dirty, self._directory_dirty = self._directory_dirty, False, False
            try:
                for descriptor in sealed:
                    os.fsync(descriptor)
                if active is not None:
                    # Only this thread closes sealed descriptors: sealed meanwhile, it is
                    # still open, in the list for the next turn.
                    os.fsync(active)
                if directory:
                    _fsync_directory(self.directory)
            except OSError as error:
                logger.error("fsync of the write-ahead log failed: %s", error)
            finally:
                for descriptor in sealed:
                    os.close(descriptor)

    def close(self) -> None:
        """The last fsync; the segment of rows not cut into a batch stays for the next run."""
        if self._closing.is_set():
            return
        self._closing.set()
        if self._thread is not None:
            self._thread.join()
        active = self.seal()
        self.sync()
        if active is not None and active.rows == 0:
            self.remove(active)
        os.close(self._claim)

    def _sync_every_interval(self) -> None:
        while not self._closing.wait(self._fsync_interval):
            self.sync()

    def _open_segment(self) -> _Active:
        token = uuid.uuid4().hex
        path = self.directory / f"{self._next_sequence:012d}-{token}{SUFFIX}"
        try:
            descriptor = os.open(path, _OPEN_FLAGS, 0o600)
            if self._fsync_interval == 0:
                _fsync_directory(self.directory)
        except OSError as error:
            raise OverloadedError(f"the write-ahead log cannot be written: {error}") from None
        self._next_sequence += 1
        self._directory_dirty = True
        self._active = _Active(descriptor, path, token)
        return self._active

    def _scan(self) -> list[Segment]:
        for leftover in self.directory.glob("*.tmp"):
            leftover.unlink()  # an adoption cut short: its spool file is still there
        segments = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")):
            match = _NAME.fullmatch(path.name)
            if match is None:
                logger.warning("ignoring %s in the write-ahead log: not a segment", path.name)
                continue
            data = path.read_bytes()
            records = [(rows, end) for rows, _payload, end in _records(data)]
            rows = sum(record_rows for record_rows, _end in records)
            end = records[-1][1] if records else 0
            if end < len(data):
                logger.warning("%s ends in %d bytes of a torn record (a request that was "
                               "never answered): ignored", path.name, len(data) - end)
                os.truncate(path, end)
            if rows == 0:
                path.unlink()
                continue
            segments.append(Segment(path, match["token"], rows, end))
        return segments


def open_log(settings: Settings) -> WriteAheadLog:
    """The log in ``COLLECTOR_WAL_DIR``, with the batches an older version spooled moved in."""
    log = WriteAheadLog(settings.wal_path, max_bytes=settings.wal_limit_bytes,
                        fsync_interval=settings.wal_fsync_interval)
    for path, batch in spooled_batches(settings.spool_path):
        log.adopt(batch.token, batch.rows)
        path.unlink()
        logger.info("moved the spooled batch %s into the write-ahead log", path.name)
    return log


def segments_on_disk(directory: Path) -> int:
    """Batches waiting in a log no process has open (``collector status``)."""
    return len(list(directory.glob(f"*{SUFFIX}"))) if directory.is_dir() else 0


def _records(data: bytes) -> Iterator[tuple[int, memoryview, int]]:
    """(rows, payload, end offset) of each whole record, up to the first torn or damaged one."""
    view = memoryview(data)
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, rows, checksum = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        offset = start + length
        # A zero length is no record: a power loss can leave a tail of zeros.
        if length == 0 or offset > len(data) \
                or zlib.crc32(view[start:offset]) != checksum:
            return
        yield rows, view[start:offset], offset


def _block(value: Any) -> RowBlock:
    """A record's rows of one table: a block, or (older versions) an array of rows."""
    if isinstance(value, list) and len(value) == 3 and isinstance(value[2], bytes):
        return RowBlock(*value)
    return encode_rows(value)


def _cut_off(active: _Active) -> None:
    """Truncate a failed append away, or remember to before the next one."""
    try:
        os.ftruncate(active.descriptor, active.size)
    except OSError:
        active.torn = True


def _sequence(path: Path) -> int:
    match = _NAME.fullmatch(path.name)
    return int(match["sequence"]) if match else 0


def _fsync_directory(directory: Path) -> None:
    """Make a created or renamed file's name survive a power loss."""
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _claim_directory(directory: Path) -> int:
    """A lock held while the log is open: two processes appending one log would replay
    each other's batches."""
    descriptor = lockfile.acquire(directory / LOCK_FILE_NAME)
    if descriptor is None:
        raise DataDirectoryBusy(
            f"the write-ahead log in {directory} is in use by pid "
            f"{lockfile.owner(directory / LOCK_FILE_NAME)}; give each collector a data "
            "directory (or COLLECTOR_WAL_DIR) of its own")
    lockfile.record_owner(descriptor)
    return descriptor

"""The write-ahead log: records survive, torn ones are ignored, replays are stored once."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector.errors import ConfigurationError, DataDirectoryBusy, LogFull, StorageError
from collector.event import EVENT_COLUMNS
from collector.row_blocks import decoded, encode_rows
from collector.settings import Settings
from collector.storage import Store
from collector.wal import SUFFIX, Segment, WriteAheadLog
from collector.writer import Writer
from tests.test_storage import sample_event

TABLES = {"events": EVENT_COLUMNS}


def count(store: Store, site: str) -> int:
    return int(store.rows("SELECT count() FROM events WHERE site = {s:String}", {"s": site})[0][0])


def segment_files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


def append(log: WriteAheadLog, rows_by_table: dict[str, list[Any]]) -> None:
    rows = sum(len(rows) for rows in rows_by_table.values())
    log.append(log.encode({table: encode_rows(table_rows)
                           for table, table_rows in rows_by_table.items()}, rows), rows)


def read_rows(log: WriteAheadLog, segment: Segment) -> dict[str, list[list[Any]]]:
    return {table: decoded(block) for table, block in log.read(segment).items()}


class Recorder:
    """An observer that also keeps a copy of the log as it was when a table went in."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.calls: list[tuple[str, Any]] = []
        self.copied: dict[str, bytes] = {}

    def flushed(self, table: str, rows: int, seconds: float) -> None:
        self.calls.append(("flushed", (table, rows)))
        assert seconds >= 0
        self.copied = {path.name: path.read_bytes() for path in segment_files(self.directory)}

    def insert_failed(self, table: str) -> None:
        self.calls.append(("insert_failed", table))

    def replayed(self, batches: int) -> None:
        self.calls.append(("replayed", batches))


def test_an_older_versions_records_are_replayed_once(store: Store, tmp_path: Path) -> None:
    """Records of rows as msgpack arrays (before row blocks), narrower than today's rows
    (before columns were added), are still read and stored."""
    directory = tmp_path / "wal"
    directory.mkdir()
    # Rows as an older version logged them: before the revenue columns (the last two).
    payload = msgspec.msgpack.encode({"events": [list(sample_event("old.test", "/a"))[:-2],
                                                 list(sample_event("old.test", "/b"))[:-2]]})
    record = struct.pack("<III", len(payload), 2, zlib.crc32(payload)) + payload
    (directory / f"{1:012d}-{'a' * 32}{SUFFIX}").write_bytes(record)
    log = WriteAheadLog(directory)
    [leftover] = log.leftovers
    assert [row[6] for row in read_rows(log, leftover)["events"]] == ["/a", "/b"]
    writer = Writer(store, TABLES, flush_interval=60, log=log)
    writer.flush()
    writer.stop()
    assert count(store, "old.test") == 2
    assert store.rows("SELECT DISTINCT revenue_amount, revenue_currency FROM events "
                      "WHERE site = 'old.test'") == [(0, "")]  # the new columns' defaults
    assert segment_files(directory) == []


def test_records_read_back_by_table_and_each_batch_is_a_segment(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path / "wal")
    first, second = sample_event("read.test", "/a"), sample_event("read.test", "/b")
    append(log, {"events": [first], "drops": [("read.test", 0, "bot", 1)]})
    append(log, {"events": [second]})
    segment = log.seal()
    assert segment is not None and (segment.rows, segment.size) == (3, log.size_bytes)
    assert segment.path.name.endswith(f"-{segment.token}{SUFFIX}")
    assert read_rows(log, segment) == {"events": [list(first), list(second)],
                                       "drops": [["read.test", 0, "bot", 1]]}
    assert log.seal() is None  # nothing appended since
    append(log, {"events": [first]})
    following = log.seal()
    assert following is not None and following.token != segment.token
    assert segment_files(tmp_path / "wal") == [segment.path, following.path]
    log.remove(segment)
    assert segment_files(tmp_path / "wal") == [following.path]
    assert log.size_bytes == following.size
    log.close()


def test_a_torn_last_record_is_ignored_and_cut_off(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path / "wal")
    for index in range(3):
        append(log, {"events": [sample_event("torn.test", f"/{index}")]})
    log.close()  # the active segment stays: its rows were never cut into a batch
    [path] = segment_files(tmp_path / "wal")
    whole = path.read_bytes()
    path.write_bytes(whole[:-7])  # the process died in the middle of the third append
    reopened = WriteAheadLog(tmp_path / "wal")
    [leftover] = reopened.leftovers
    assert leftover.rows == 2
    assert [row[6] for row in read_rows(reopened, leftover)["events"]] == ["/0", "/1"]
    assert path.stat().st_size == leftover.size == reopened.size_bytes < len(whole)
    reopened.close()


def test_a_damaged_record_ends_the_segment_there(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path / "wal")
    for index in range(3):
        append(log, {"events": [sample_event("damaged.test", f"/{index}")]})
    segment = log.seal()
    assert segment is not None
    data = bytearray(segment.path.read_bytes())
    data[len(data) * 2 // 3] ^= 0xFF  # a flipped bit in the third record's payload
    segment.path.write_bytes(bytes(data))
    assert [row[6] for row in read_rows(log, segment)["events"]] == ["/0", "/1"]
    segment.path.write_bytes(bytes(len(data)))  # zeros, as a power loss can leave
    assert read_rows(log, segment) == {}
    log.close()


def test_a_segment_of_nothing_but_a_torn_record_is_removed(tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    directory.mkdir()
    (directory / f"000000000001-{'a' * 32}{SUFFIX}").write_bytes(b"\x10\x00\x00")
    log = WriteAheadLog(directory)
    assert log.leftovers == [] and segment_files(directory) == []
    log.close()


def test_a_replay_after_a_crash_past_the_insert_is_stored_once(store: Store,
                                                               tmp_path: Path) -> None:
    """The batch reached ClickHouse, then the process died before deleting its segment."""
    directory = tmp_path / "wal"
    store.command("CREATE TABLE replay_second (site String) ENGINE = MergeTree ORDER BY site "
                  "SETTINGS non_replicated_deduplication_window = 100")
    observer = Recorder(directory)
    writer = Writer(store, {**TABLES, "replay_second": ("site",)}, flush_interval=60,
                    log=WriteAheadLog(directory), observer=observer)
    writer.add({"events": [sample_event("replay.test", f"/{i}") for i in range(4)],
                "replay_second": [("x",)]}, 400)
    writer.flush()
    assert segment_files(directory) == []
    assert [name for name, _ in observer.calls] == ["flushed", "flushed"]
    writer.stop()
    for name, data in observer.copied.items():  # as the log was after both inserts
        (directory / name).write_bytes(data)

    replayed = Recorder(directory)
    restarted = Writer(store, {**TABLES, "replay_second": ("site",)}, flush_interval=60,
                       log=WriteAheadLog(directory), observer=replayed)
    assert restarted.buffered_rows == 5 and restarted.spooled_batches == 1
    restarted.flush()
    assert count(store, "replay.test") == 4
    assert store.rows("SELECT count() FROM replay_second") == [(1,)]
    assert replayed.calls[-1] == ("replayed", 1)
    assert segment_files(directory) == [] and restarted.buffered_rows == 0
    restarted.stop()


def test_a_batch_half_written_before_a_crash_is_completed_once(store: Store,
                                                               tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    observer = Recorder(directory)
    writer = Writer(store, {**TABLES, "half_missing": ("site",)}, flush_interval=60,
                    log=WriteAheadLog(directory), observer=observer)
    writer.add({"events": [sample_event("half.test")] * 3, "half_missing": [("y",)]}, 300)
    with pytest.raises(StorageError):
        writer.flush()  # events went in; the second table does not exist yet
    assert ("insert_failed", "half_missing") in observer.calls
    writer.stop(timeout=0)  # the batch stays in the log
    store.command("CREATE TABLE half_missing (site String) ENGINE = MergeTree ORDER BY site")
    restarted = Writer(store, {**TABLES, "half_missing": ("site",)}, flush_interval=60,
                       log=WriteAheadLog(directory))
    restarted.flush()
    assert count(store, "half.test") == 3
    assert store.rows("SELECT count() FROM half_missing") == [(1,)]
    restarted.stop()


def test_rows_left_unbatched_by_a_crash_are_replayed(store: Store, tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    log = WriteAheadLog(directory)
    writer = Writer(store, TABLES, flush_interval=60, log=log)
    writer.add({"events": [sample_event("unbatched.test", f"/{i}") for i in range(6)]}, 600)
    log.close()  # what a crash leaves: the records, in a segment no batch was cut from
    restarted = Writer(store, TABLES, flush_interval=60, log=WriteAheadLog(directory))
    assert restarted.buffered_rows == 6
    restarted.flush()
    assert count(store, "unbatched.test") == 6
    restarted.stop()


def test_the_log_is_bounded_and_only_what_it_took_is_accepted(store: Store,
                                                             tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path / "wal", max_bytes=2000)
    writer = Writer(store, TABLES, flush_interval=60, log=log)
    accepted = 0
    with pytest.raises(LogFull, match=r"is full \(2000 bytes\)"):
        for index in range(100):
            writer.add({"events": [sample_event("bounded.test", f"/{index}")]}, 100)
            accepted += 1
    assert 0 < accepted < 100 and log.size_bytes <= 2000
    assert writer.stats.log_bytes == log.size_bytes
    writer.flush()
    assert count(store, "bounded.test") == accepted
    assert log.size_bytes == writer.stats.log_bytes == 0
    writer.add({"events": [sample_event("bounded.test", "/after")]}, 100)  # room again
    writer.stop()


def test_one_process_per_log(tmp_path: Path) -> None:
    log = WriteAheadLog(tmp_path / "wal")
    with pytest.raises(DataDirectoryBusy, match=f"in use by pid {os.getpid()}"):
        WriteAheadLog(tmp_path / "wal")
    log.close()
    WriteAheadLog(tmp_path / "wal").close()


def test_the_fsync_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    every_write = WriteAheadLog(tmp_path / "every", fsync_interval=0)
    append(every_write, {"events": [sample_event()]})
    assert len(synced) >= 2  # the new segment's directory entry, and the record
    before = len(synced)
    append(every_write, {"events": [sample_event()]})
    assert len(synced) == before + 1  # before the append returned
    every_write.close()

    synced.clear()
    interval = WriteAheadLog(tmp_path / "interval", fsync_interval=0.05)
    interval.start()
    append(interval, {"events": [sample_event()]})
    deadline = time.monotonic() + 10
    while len(synced) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(synced) >= 2  # the segment, then its directory, by the background thread
    quiet = len(synced)
    time.sleep(0.2)
    assert len(synced) == quiet  # nothing new appended: nothing to fsync
    interval.close()


@pytest.mark.parametrize(("raw", "expected"), [("0", 0.0), ("0.0", 0.0), ("0.25", 0.25)])
def test_the_fsync_interval_setting(raw: str, expected: float) -> None:
    assert Settings().wal_fsync_interval == 1.0
    assert Settings.from_env({"COLLECTOR_WAL_FSYNC_INTERVAL": raw}).wal_fsync_interval == expected


def test_a_negative_fsync_interval_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="COLLECTOR_WAL_FSYNC_INTERVAL='-1' is invalid"):
        Settings.from_env({"COLLECTOR_WAL_FSYNC_INTERVAL": "-1"})


def test_the_log_settings_and_their_deprecated_spool_names(tmp_path: Path) -> None:
    default = Settings.from_env({"COLLECTOR_DATA_DIR": str(tmp_path)})
    assert (default.wal_path, default.wal_limit_bytes) == (tmp_path / "wal", 1 << 30)
    legacy = Settings.from_env({"COLLECTOR_SPOOL_MAX_BYTES": "5000"})
    assert legacy.wal_limit_bytes == 5000
    both = Settings.from_env({"COLLECTOR_SPOOL_MAX_BYTES": "5000",
                              "COLLECTOR_WAL_MAX_BYTES": "7000", "COLLECTOR_WAL_DIR": "/x"})
    assert (both.wal_limit_bytes, both.wal_path) == (7000, Path("/x"))


# Ends a script run by ``run_log_script``: the pages of the sealed segment, and whether its
# size is the log's.
_PRINT_SEALED = """
segment = log.seal()
print([row[6] for row in decoded(log.read(segment)["events"])], segment.size == log.size_bytes)
log.close()
"""


def run_log_script(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (then ``_PRINT_SEALED``) in a process of its own: it lowers its file
    size limit to make the disk refuse a write."""
    result = subprocess.run([sys.executable, "-c", script + _PRINT_SEALED], capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    return result


def test_a_write_the_disk_refuses_is_cut_off(tmp_path: Path) -> None:
    """A short write (here: past the file size limit) leaves no torn record behind."""
    script = textwrap.dedent(f"""
        import resource
        from pathlib import Path
        from collector.errors import OverloadedError
        from collector.row_blocks import decoded, encode_rows
        from collector.wal import WriteAheadLog
        from tests.test_storage import sample_event

        log = WriteAheadLog(Path({str(tmp_path / "wal")!r}), fsync_interval=0)
        rows = {{"events": encode_rows([sample_event("short.test", "/kept")])}}
        log.append(log.encode(rows, 1), 1)
        size = log.size_bytes
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, resource.RLIM_INFINITY))
        try:
            log.append(log.encode(rows, 1), 1)
        except OverloadedError as error:
            print("refused:", error)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        rows = {{"events": encode_rows([sample_event("short.test", "/after")])}}
        log.append(log.encode(rows, 1), 1)
    """)
    result = run_log_script(script)
    refused, kept = result.stdout.splitlines()
    assert refused.startswith("refused: the write-ahead log cannot be written")
    assert kept == "['/kept', '/after'] True"


def staged_record(log: WriteAheadLog, site: str, page: str) -> bytes:
    return log.encode({"events": encode_rows([sample_event(site, page)])}, 1)


def test_staged_records_are_written_together_by_commit_or_seal(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = WriteAheadLog(tmp_path / "wal")
    writes: list[int] = []
    write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: writes.append(len(data)) or write(fd, data))
    records = [staged_record(log, "group.test", f"/{n}") for n in range(3)]
    for record in records:
        log.stage(record, 1)
    assert not segment_files(tmp_path / "wal")  # nothing is written before the commit
    log.commit()
    assert writes == [sum(map(len, records))]  # one write for the group
    log.commit()
    assert len(writes) == 1  # nothing staged: no write
    log.stage(staged_record(log, "group.test", "/sealed"), 1)
    segment = log.seal()  # a batch being cut takes the staged records with it
    assert segment is not None and segment.rows == 4 and segment.size == log.size_bytes
    assert [row[6] for row in read_rows(log, segment)["events"]] == ["/0", "/1", "/2", "/sealed"]
    log.close()


def test_a_group_the_disk_refuses_pauses_new_records_for_a_second(tmp_path: Path) -> None:
    """A refused group write is cut off; its rows stay in memory (the writer has them) and
    new records get 503 for a second, then the log takes them again."""
    script = textwrap.dedent(f"""
        import resource, time
        from pathlib import Path
        from collector.errors import OverloadedError
        from collector.row_blocks import decoded, encode_rows
        from collector.wal import FAILURE_PAUSE_SECONDS, WriteAheadLog
        from tests.test_storage import sample_event

        def record(page):
            return log.encode({{"events": encode_rows([sample_event("pause.test", page)])}}, 1)

        log = WriteAheadLog(Path({str(tmp_path / "wal")!r}))
        log.append(record("/kept"), 1)
        resource.setrlimit(resource.RLIMIT_FSIZE, (log.size_bytes + 100, resource.RLIM_INFINITY))
        log.stage(record("/refused-1"), 1)
        log.stage(record("/refused-2"), 1)
        log.commit()  # refused: logged, not raised (the answers go out; rows are in memory)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        try:
            log.stage(record("/paused"), 1)
        except OverloadedError as error:
            print("paused:", error)
        time.sleep(FAILURE_PAUSE_SECONDS + 0.1)
        log.stage(record("/after"), 1)
        log.commit()
    """)
    result = run_log_script(script)
    paused, kept = result.stdout.splitlines()
    assert paused == "paused: the write-ahead log cannot be written; retry shortly"
    assert kept == "['/kept', '/after'] True"
    assert "rows are kept in memory only until the next flush" in result.stderr

"""Outages: batches ClickHouse cannot take wait in the write-ahead log, out of memory, and
are written exactly once when it is back; an older version's spool moves into the log."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pytest

from collector.errors import OverloadedError, StorageError
from collector.event import EVENT_COLUMNS
from collector.settings import Settings
from collector.spool import SpooledBatch
from collector.storage import Store, migrate, open_store
from collector.wal import SUFFIX, WriteAheadLog, open_log
from collector.writer import Writer
from tests.conftest import fresh_database_name
from tests.test_storage import sample_event

TABLES = {"events": EVENT_COLUMNS}


@pytest.fixture()
def outage_store(engine_url: str) -> Store:
    """A store on its own database, which the test can take down and bring back."""
    opened = open_store(engine_url, fresh_database_name("outage"))
    migrate(opened)
    return opened


def take_down(store: Store) -> None:
    store.command(f"DROP DATABASE {store.database}")


def bring_back(store: Store) -> None:
    store.command(f"CREATE DATABASE {store.database}")
    migrate(store)


def count(store: Store) -> int:
    return int(store.rows("SELECT count() FROM events")[0][0])


class Replays:
    def __init__(self) -> None:
        self.batches = 0
        self.failed: list[str] = []

    def flushed(self, table: str, rows: int, seconds: float) -> None:
        pass

    def insert_failed(self, table: str) -> None:
        self.failed.append(table)

    def replayed(self, batches: int) -> None:
        self.batches += batches


def test_an_outage_keeps_batches_in_the_log_and_the_recovery_writes_them(
        outage_store: Store, tmp_path: Path) -> None:
    observer = Replays()
    writer = Writer(outage_store, TABLES, flush_interval=60,
                    log=WriteAheadLog(tmp_path / "wal"), observer=observer)
    take_down(outage_store)
    writer.add({"events": [sample_event("outage.test", f"/{i}") for i in range(5)]}, 500)
    with pytest.raises(StorageError):
        writer.flush()
    writer.add({"events": [sample_event("outage.test", "/later")]}, 100)
    with pytest.raises(StorageError):
        writer.flush()
    assert writer.buffered_rows == 6  # still counted, though...
    assert writer.spooled_batches == 2 == len(list((tmp_path / "wal").glob(f"*{SUFFIX}")))
    assert writer._pending[1].rows is None  # ...only the oldest batch is held in memory
    assert observer.failed == ["events", "events"]
    bring_back(outage_store)
    writer.flush()
    assert count(outage_store) == 6
    assert (writer.buffered_rows, writer.spooled_batches, writer.stats.log_bytes) == (0, 0, 0)
    assert observer.batches == 1  # the second batch came back from the log
    writer.stop()


def test_shutdown_during_an_outage_loses_nothing_across_a_restart(outage_store: Store,
                                                                  tmp_path: Path) -> None:
    writer = Writer(outage_store, TABLES, flush_interval=60, log=WriteAheadLog(tmp_path / "wal"))
    writer.start()
    take_down(outage_store)
    writer.add({"events": [sample_event("restart.test")] * 4}, 400)
    writer.stop(timeout=1)
    bring_back(outage_store)
    restarted = Writer(outage_store, TABLES, flush_interval=60,
                       log=WriteAheadLog(tmp_path / "wal"))
    assert restarted.buffered_rows == 4
    restarted.flush()
    assert count(outage_store) == 4
    restarted.stop()


def test_the_cap_counts_every_row_not_written_through_an_outage(outage_store: Store,
                                                                tmp_path: Path) -> None:
    writer = Writer(outage_store, TABLES, flush_interval=60, max_rows=4,
                    log=WriteAheadLog(tmp_path / "wal"))
    take_down(outage_store)
    for index in range(2):
        writer.add({"events": [sample_event("cap.test", f"/{index}")] * 2}, 200)
        with pytest.raises(StorageError):
            writer.flush()
    with pytest.raises(OverloadedError):
        writer.add({"events": [sample_event("cap.test", "/refused")]}, 100)
    with pytest.raises(OverloadedError):
        writer.ensure_room(1)
    assert writer.buffered_rows == 4
    assert list(tmp_path.rglob("*.tmp")) == []
    bring_back(outage_store)
    writer.flush()
    assert count(outage_store) == 4
    writer.ensure_room(4)
    writer.stop()


def spool_file(directory: Path, token: str, rows: list[Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"00000000000000000001-{token}.batch"
    path.write_bytes(msgspec.msgpack.encode(
        SpooledBatch(token, {"events": [list(row) for row in rows]}, ["events"])))
    return path


def test_an_older_versions_spool_moves_into_the_log_and_is_stored_once(
        outage_store: Store, tmp_path: Path) -> None:
    settings = Settings.from_env({"COLLECTOR_DATA_DIR": str(tmp_path)})
    landed = [sample_event("legacy.test", "/landed")] * 3
    outage_store.insert_columns("events", EVENT_COLUMNS, list(zip(*landed)),
                                token=f"{'1' * 32}-events")
    spool_file(settings.spool_path, "1" * 32, landed)
    spool_file(settings.spool_path, "2" * 32, [sample_event("legacy.test", "/waiting")])
    (settings.spool_path / "00000000000000000003-failed.tmp").touch()  # an old failed save
    log = open_log(settings)
    assert list(settings.spool_path.iterdir()) == []
    assert sorted(segment.token for segment in log.leftovers) == ["1" * 32, "2" * 32]
    writer = Writer(outage_store, TABLES, log=log)
    writer.flush()
    assert outage_store.rows("SELECT pathname, count() FROM events GROUP BY 1 ORDER BY 1") == [
        ("/landed", 3), ("/waiting", 1)]
    assert list(settings.wal_path.glob(f"*{SUFFIX}")) == []
    writer.stop()

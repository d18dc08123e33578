"""Outages: batches ClickHouse cannot take wait on disk and are replayed exactly once."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.errors import SpoolFull, StorageError
from collector.event import EVENT_COLUMNS
from collector.spool import Spool, SpooledBatch
from collector.storage import Store, migrate, open_store
from collector.writer import Writer
from tests.conftest import fresh_database_name
from tests.test_storage import sample_event


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


def test_an_outage_spools_and_the_recovery_replays(outage_store: Store, tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 1 << 20)
    writer = Writer(outage_store, {"events": EVENT_COLUMNS}, flush_interval=60, spool=spool)
    take_down(outage_store)
    writer.add({"events": [sample_event("outage.test", f"/{i}") for i in range(5)]}, 500)
    with pytest.raises(StorageError):
        writer.flush()
    assert writer.buffered_rows == 0  # nothing waits in memory...
    assert writer.spooled_batches == 1  # ...it is on disk
    writer.add({"events": [sample_event("outage.test", "/later")]}, 100)
    with pytest.raises(StorageError):
        writer.flush()
    assert writer.spooled_batches == 2
    bring_back(outage_store)
    writer.flush()
    assert writer.spooled_batches == 0
    assert count(outage_store) == 6


def test_shutdown_during_an_outage_loses_nothing_across_a_restart(outage_store: Store,
                                                                  tmp_path: Path) -> None:
    writer = Writer(outage_store, {"events": EVENT_COLUMNS}, flush_interval=60,
                    spool=Spool(tmp_path / "spool", 1 << 20))
    writer.start()
    take_down(outage_store)
    writer.add({"events": [sample_event("restart.test")] * 4}, 400)
    writer.stop(timeout=1)
    assert writer.buffered_rows == 0
    bring_back(outage_store)
    restarted = Writer(outage_store, {"events": EVENT_COLUMNS}, flush_interval=60,
                       spool=Spool(tmp_path / "spool", 1 << 20))
    restarted.flush()
    assert count(outage_store) == 4


def test_a_spooled_batch_that_already_landed_is_not_stored_twice(outage_store: Store,
                                                                 tmp_path: Path) -> None:
    rows = [sample_event("twice.test")] * 3
    outage_store.insert_columns("events", EVENT_COLUMNS, list(zip(*rows)), token="t1-events")
    spool = Spool(tmp_path / "spool", 1 << 20)
    spool.save(SpooledBatch("t1", {"events": [list(row) for row in rows]}))
    Writer(outage_store, {"events": EVENT_COLUMNS}, spool=spool).flush()
    assert count(outage_store) == 3
    assert spool.files() == []


def test_a_full_spool_keeps_batches_in_memory_and_then_refuses(outage_store: Store,
                                                              tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool", 10)
    with pytest.raises(SpoolFull, match=r"is full \(10 bytes\)"):
        spool.save(SpooledBatch("big", {"events": [list(sample_event())]}))
    writer = Writer(outage_store, {"events": EVENT_COLUMNS}, flush_interval=60, max_rows=2,
                    spool=spool)
    take_down(outage_store)
    writer.add({"events": [sample_event("full.test")] * 2}, 200)
    with pytest.raises(StorageError):
        writer.flush()
    assert writer.buffered_rows == 2
    bring_back(outage_store)
    writer.flush()
    assert count(outage_store) == 2

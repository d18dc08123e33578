"""Storage: migrations, retention TTL, replay deduplication, error translation, ownership."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.errors import StorageError
from collector.event import EVENT_COLUMNS, Event
from collector.storage import Store, applied_versions, migrate
from collector.storage.migrations import available_migrations


def sample_event(site: str = "storage.test", path: str = "/") -> Event:
    from tests.reporting_data import make_event

    return make_event(int(time.time() * 1000), 42, path, site=site)


def test_migrations_are_recorded_and_idempotent(store: Store) -> None:
    versions = {version for version, _, _ in available_migrations()}
    assert applied_versions(store) == versions
    assert migrate(store) == []


def test_events_table_shape(store: Store) -> None:
    ddl = store.rows("SELECT create_table_query FROM system.tables "
                     "WHERE database = currentDatabase() AND name = 'events'")[0][0]
    assert "PARTITION BY toYYYYMM(timestamp)" in ddl
    assert "ORDER BY (site, toDate(timestamp), visitor, timestamp)" in ddl
    assert "SAMPLE BY visitor" in ddl
    assert "toIntervalMonth(13)" in ddl
    columns = [row[0] for row in store.rows(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'events' ORDER BY position")]
    assert tuple(columns) == EVENT_COLUMNS
    for forbidden in ("ip", "user_agent", "query", "screen_width", "latitude", "longitude"):
        assert forbidden not in columns


def test_retention_setting_changes_the_ttl(store: Store) -> None:
    migrate(store, retention_months=6)
    ddl = store.rows("SELECT create_table_query FROM system.tables "
                     "WHERE database = currentDatabase() AND name = 'events'")[0][0]
    assert "toIntervalMonth(6)" in ddl
    migrate(store, retention_months=13)


def test_a_replayed_batch_is_stored_once(store: Store) -> None:
    columns = list(zip(*[sample_event(path="/replayed")]))
    for _ in range(3):
        store.insert_columns("events", EVENT_COLUMNS, columns, token="batch-1-events")
    assert store.rows("SELECT count() FROM events WHERE pathname = '/replayed'") == [(1,)]


def test_driver_errors_become_our_own(store: Store) -> None:
    with pytest.raises(StorageError, match="UNKNOWN_IDENTIFIER|Unknown"):
        store.rows("SELECT no_such_column FROM events")


def test_a_second_process_cannot_open_an_owned_directory(engine_dir: Path) -> None:
    code = ("import sys\nfrom collector.storage import open_store\n"
            "from collector.errors import DataDirectoryBusy\n"
            f"try:\n    open_store('chdb://{engine_dir}')\n"
            "except DataDirectoryBusy as e:\n    print(e); sys.exit(3)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 3, result.stderr
    assert "in use by pid" in result.stdout


# Another program's embedded engine on the directory: it knows nothing of collector.lock.
FOREIGN_ENGINE = """
import sys, clickhouse_connect
client = clickhouse_connect.get_client(dsn="chdb://" + sys.argv[1])
client.command("SELECT 1")
print("running", flush=True)
sys.stdin.read()
"""


def test_a_directory_another_engine_runs_in_is_busy(tmp_path: Path) -> None:
    code = ("import sys\nfrom collector.storage import open_store\n"
            "from collector.errors import DataDirectoryBusy\n"
            f"try:\n    open_store('chdb://{tmp_path}')\n"
            "except DataDirectoryBusy as e:\n    print(e); sys.exit(3)\n")
    with subprocess.Popen([sys.executable, "-c", FOREIGN_ENGINE, str(tmp_path)],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as engine:
        assert engine.stdout is not None and engine.stdin is not None
        assert engine.stdout.readline() == "running\n"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                timeout=120)
        engine.stdin.close()
    assert result.returncode == 3, result.stderr
    assert f"{tmp_path.resolve()} is in use by another ClickHouse engine (PID: {engine.pid})" \
        in result.stdout


def test_the_lean_rollups_migration_rolls_up_stored_traffic(engine_url: str) -> None:
    from collector.storage import open_store
    from tests.conftest import fresh_database_name
    from tests.reporting_data import (
        COLUMNS_BEFORE_REVENUE,
        SITE,
        VISIT_COLUMNS_BEFORE_EXIT_HOST,
        at,
        make_event,
        sample_site_events,
        store_events,
    )

    other = open_store(engine_url, fresh_database_name("backfill"))
    migrate(other, up_to=4)
    # stored under the old rollups, then after them (through the views); 0010 is not applied
    store_events(other, sample_site_events(), event_columns=COLUMNS_BEFORE_REVENUE,
                 visit_columns=VISIT_COLUMNS_BEFORE_EXIT_HOST)
    assert migrate(other, up_to=5) == ["0005_lean_rollups.sql"]
    store_events(other, [make_event(at("09:00", 3), 7)], event_columns=COLUMNS_BEFORE_REVENUE,
                 visit_columns=VISIT_COLUMNS_BEFORE_EXIT_HOST)

    def raw_and_rolled_up() -> tuple[list[tuple[int, ...]], ...]:
        return (other.rows("SELECT sum(sign), sum(sign * pageviews), sum(sign * is_bounce) "
                           "FROM visits"),
                other.rows("SELECT sum(visits), sum(pageviews), sum(bounces) "
                           "FROM visits_rollup_daily WHERE dimension = 'browser'"),
                other.rows("SELECT sum(visits), sum(pageviews), sum(bounces) FROM visits_rollup"))

    raw, daily, hourly = raw_and_rolled_up()
    assert raw == daily == hourly and raw[0][0] == 7 + 1
    assert other.rows("SELECT sum(events) FROM events_rollup_daily") == other.rows(
        "SELECT count() FROM events WHERE name != 'engagement' AND site = {site:String}",
        {"site": SITE})
    assert other.rows("SELECT name FROM system.tables WHERE database = currentDatabase() "
                      "AND name = 'events_rollup'") == []


def test_a_replayed_batch_counts_once_in_every_rollup(store: Store) -> None:
    from collector.visits import VISIT_COLUMNS, VisitTracker
    from tests.reporting_data import at, make_event

    tracker = VisitTracker()
    events, visit_rows = [], []
    for offset, path in enumerate(["/a", "/b", "/c"]):
        tracked, rows = tracker.track(make_event(at(f"10:0{offset}", 2), 99, path,
                                                 site="replay.test"))
        events.append(tracked)
        visit_rows.extend(rows)
    for _ in range(3):  # the writer's retry after an ambiguous failure, twice
        store.insert_columns("events", EVENT_COLUMNS, list(zip(*events)), token="replay-e")
        store.insert_columns("visits", VISIT_COLUMNS, list(zip(*visit_rows)), token="replay-v")
    site = {"site": "replay.test"}
    assert store.rows("SELECT sum(events) FROM events_rollup_daily WHERE site = {site:String}",
                      site) == [(3,)]
    for table in ("visits_rollup", "visits_rollup_daily"):
        assert store.rows(f"SELECT sum(visits), sum(pageviews) FROM {table} "
                          "WHERE site = {site:String} AND dimension = ''", site) == [(1, 3)]

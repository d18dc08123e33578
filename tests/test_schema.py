"""The schema declaration against the store the migrations build, and migration rendering."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from collector.errors import SchemaMismatch
from collector.event import EVENT_COLUMNS, VISIT_COLUMNS, Event, VisitRow
from collector.reports.builder import SiteContext
from collector.reports.dimensions import DIMENSIONS
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.reports.sampling import Sampler
from collector.schema import EVENTS_TABLE, TABLES, VISITS_TABLE, column_names, rollup_dimensions
from collector.storage import Store, migrate, open_store
from collector.storage.migrations import Deployment, available_migrations, render
from collector.storage.schema_check import schema_differences, verify_schema
from tests.conftest import fresh_database_name
from tests.reporting_data import (
    COLUMNS_BEFORE_REVENUE,
    SITE,
    VISIT_COLUMNS_BEFORE_EXIT_HOST,
    day,
    sample_site_events,
    store_events,
)

# Names that would betray a field able to hold what the privacy statement says is never kept.
FORBIDDEN = re.compile(r"(^|_)(ip|addr|address|user_agent|ua|query|width|height|lat|lon)($|_)")


def test_values_are_exactly_the_declared_columns() -> None:
    assert EVENT_COLUMNS == column_names("events")
    assert VISIT_COLUMNS == column_names("visits")
    assert len(Event._fields) == len(EVENTS_TABLE) and len(VisitRow._fields) == len(VISITS_TABLE)


@pytest.mark.parametrize("table", sorted(TABLES))
def test_no_declared_column_can_hold_personal_data(table: str) -> None:
    assert not [column.name for column in TABLES[table] if FORBIDDEN.search(column.name)]


def test_every_column_dimension_is_a_report_dimension() -> None:
    declared = {column.dimension for table in TABLES.values() for column in table
                if column.dimension}
    assert declared <= set(DIMENSIONS)
    assert DIMENSIONS["visit:screen"].in_rollup  # the dimension migration 0006 added


def test_a_fresh_store_matches_the_declaration(store: Store) -> None:
    assert schema_differences(store) == []


@pytest.fixture
def scratch(engine_url: str) -> Iterator[Store]:
    yield open_store(engine_url, fresh_database_name("schema_scratch"))


def test_a_declared_column_without_its_migration_stops_startup(scratch: Store) -> None:
    migrate(scratch)
    scratch.command("ALTER TABLE events DROP COLUMN scroll_depth")
    with pytest.raises(SchemaMismatch, match=r"events\.scroll_depth is declared but not"):
        verify_schema(scratch)


def test_a_rollup_dimension_without_its_migration_stops_startup(scratch: Store) -> None:
    migrate(scratch, up_to=5)  # the views before visit:screen was added
    scratch.command("INSERT INTO schema_migrations (version, name, applied_ms) "
                    "VALUES (6, 'skipped', 0)")
    differences = " ".join(schema_differences(scratch))
    assert "visits_rollup_daily_mv carries" in differences and "'screen'" in differences


def test_a_store_migrates_forward_with_its_traffic(scratch: Store,
                                                   rollups_in_use: Sampler) -> None:
    """Traffic stored before the leaner store (0006) reports the same after it: from the
    raw tables, and from the rollups, including visit:screen, backfilled by 0006."""
    migrate(scratch, up_to=5)
    store_events(scratch, sample_site_events(), event_columns=COLUMNS_BEFORE_REVENUE,
                 visit_columns=VISIT_COLUMNS_BEFORE_EXIT_HOST)
    # Before the channel fix, ingest stored direct visits as "Referral".
    scratch.command("ALTER TABLE visits UPDATE channel = 'Referral' WHERE channel = 'Direct'",
                    settings={"mutations_sync": 2})
    migrate(scratch)
    assert schema_differences(scratch) == []
    assert scratch.rows("SELECT DISTINCT channel FROM visits ORDER BY channel") == [
        ("Direct",), ("Organic Search",), ("Organic Social",)]
    now = datetime.combine(day(5), datetime.min.time(), UTC) + timedelta(hours=12)
    for name in ("visit:screen", "visit:channel", "visit:source", "event:page"):
        metrics = ["visitors", "visits"] if name.startswith("visit:") else ["visitors", "events"]
        spec = parse_query({"site_id": SITE, "metrics": metrics, "dimensions": [name],
                            "date_range": [day(0).isoformat(), day(1).isoformat()]})
        raw = run_report(scratch, spec, SiteContext(SITE), now, force_raw=True,
                         sampler=rollups_in_use)
        rolled = run_report(scratch, spec, SiteContext(SITE), now, sampler=rollups_in_use)
        assert rolled.meta["source"] == "rollup" and raw.meta["source"] == "raw"
        assert raw.results and rolled.results == raw.results, name


def test_single_node_rendering_leaves_no_placeholder() -> None:
    for _, name, template in available_migrations():
        for statement in render(template):
            assert "{{" not in statement, name
            assert "ON CLUSTER" not in statement and "Replicated" not in statement, name


def test_cluster_rendering_parses_with_clickhouse_own_parser(store: Store) -> None:
    cluster = Deployment(cluster="analytics")
    statements = [statement for _, _, template in available_migrations()
                  for statement in render(template, cluster)]
    creates = [s for s in statements if s.startswith("CREATE TABLE") and "ENGINE" in s]
    assert creates and all("ON CLUSTER `analytics`" in s and ("ENGINE = Replicated" in s
                                                            or "ENGINE = Distributed(" in s)
                           for s in creates)
    for statement in statements:
        formatted = store.rows("SELECT formatQuery({sql:String})", {"sql": statement})[0][0]
        assert formatted.split()[0] == statement.split()[0]


def test_rollup_views_are_generated_from_the_declared_dimensions(store: Store) -> None:
    views = dict(store.rows("SELECT name, as_select FROM system.tables "
                            "WHERE database = currentDatabase() AND engine = 'MaterializedView'"))
    for dimension in rollup_dimensions("visits"):
        assert f"('{dimension}', toString({dimension}))" in views["visits_rollup_daily_mv"]
    assert views["events_rollup_daily_mv"].endswith(
        "GROUP BY site, hour, " + ", ".join(rollup_dimensions("events")))


def test_the_reports_guide_lists_every_dimension() -> None:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "reports.md").read_text()
    listed = next(line for line in guide.splitlines() if line.startswith("| `dimensions` |"))
    assert [name for name in DIMENSIONS if f"`{name}`" not in listed] == []

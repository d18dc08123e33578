"""Cluster mode (``COLLECTOR_CLICKHOUSE_CLUSTER``): the migrations laid out for a ClickHouse
cluster, every statement parsed by ClickHouse's own parser, and the layout run for real on a
cluster of one shard (``tests/cluster_layout.py``: what it cannot run, it says)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.errors import ConfigurationError
from collector.settings import Settings
from collector.storage import Store, migrate
from collector.storage.cluster import LOCAL_SUFFIX, SHARDING_KEYS, Deployment
from collector.storage.migrations import available_migrations, render

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = Deployment(cluster="analytics")
STATEMENTS = [statement for _, _, template in available_migrations()
              for statement in render(template, CLUSTER)]
_CREATED = re.compile(r"^CREATE TABLE (?:IF NOT EXISTS )?(\w+) ON CLUSTER `analytics`")
_ENGINE = re.compile(r"ENGINE = (\w+)\((.*?)\)\s*(?:$|\n|PARTITION|ORDER)", re.DOTALL)
# Tables the cluster must keep correct on every node: the list.
SMALL_TABLES = {"sites", "salts", "api_keys", "goals", "report_settings", "site_retention",
                "audit"}


def created_tables() -> dict[str, str]:
    """Each CREATE TABLE of the cluster rendering: table name → statement (the last)."""
    return {match.group(1): statement for statement in STATEMENTS
            if (match := _CREATED.match(statement))}


def formatted(store: Store, statement: str) -> str:
    return str(store.rows("SELECT formatQuery({sql:String})", {"sql": statement})[0][0])


def test_every_cluster_statement_parses_with_clickhouse_own_parser(store: Store) -> None:
    assert len(STATEMENTS) > 60
    without_cluster = []
    for statement in STATEMENTS:
        canonical = formatted(store, statement)
        assert canonical.split()[:2] == statement.split()[:2], statement
        if " ON CLUSTER analytics" not in canonical:
            without_cluster.append(statement)
    # Only ALTERs of the small tables, which Keeper replicates (Deployment.alter_target).
    assert without_cluster and all(
        statement.startswith("ALTER TABLE ") and statement.split()[2] not in SHARDING_KEYS
        and not statement.split()[2].endswith(LOCAL_SUFFIX) for statement in without_cluster)


def test_single_node_rendering_has_no_cluster_layout() -> None:
    for _, name, template in available_migrations():
        for statement in render(template):
            assert LOCAL_SUFFIX + " " not in statement and "Distributed(" not in statement, name


def test_ingest_tables_and_rollups_are_local_tables_behind_distributed_ones() -> None:
    created = created_tables()
    for table, key in SHARDING_KEYS.items():
        local = created[table + LOCAL_SUFFIX]
        engine = _ENGINE.search(local)
        assert engine and engine.group(1).startswith("Replicated"), table
        assert engine.group(2).startswith(
            f"'/clickhouse/tables/{{shard}}/{{database}}/{table}_local', '{{replica}}'")
        assert created[table].endswith(
            f"AS collector.{table}_local ENGINE = Distributed('analytics', 'collector', "
            f"'{table}_local', {key})")


def test_a_visitors_events_and_visits_land_on_one_shard() -> None:
    """Same key, same shard: a visit's versions collapse there, and FINAL sees them all."""
    assert SHARDING_KEYS["events"] == SHARDING_KEYS["visits"] == "visitor"
    # Rows written with deduplication tokens must split the same way when replayed.
    assert "rand()" not in SHARDING_KEYS["drops"]


def test_small_tables_are_replicated_to_every_node() -> None:
    created = created_tables()
    everywhere = {table for table in created
                  if not table.endswith(LOCAL_SUFFIX) and table not in SHARDING_KEYS}
    assert SMALL_TABLES <= everywhere
    for table in everywhere:
        engine = _ENGINE.search(created[table])
        assert engine and engine.group(1).startswith("Replicated"), table
        # No shard in the path: every node of every shard is a replica of the one table.
        assert engine.group(2).startswith(
            f"'/clickhouse/tables/all/{{database}}/{table}', '{{shard}}-{{replica}}'"), table


def test_views_fill_local_tables_from_local_tables() -> None:
    views = [statement for statement in STATEMENTS
             if statement.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) >= 7
    for view in views:
        target = re.search(r" TO (\w+) AS", view)
        assert target and target.group(1).endswith(LOCAL_SUFFIX), view[:120]
        sources = re.findall(r"\bFROM (\w+)", view)
        assert sources and all(source.endswith(LOCAL_SUFFIX) for source in sources), sources


def test_alters_reach_local_tables_and_the_distributed_columns() -> None:
    alters = [statement for statement in STATEMENTS if statement.startswith("ALTER TABLE")]
    by_table: dict[str, list[str]] = {}
    for statement in alters:
        by_table.setdefault(statement.split()[2], []).append(statement)
    # 0006 changes the codecs of events: locally, and in the Distributed table's columns.
    assert any("MODIFY COLUMN timestamp" in statement for statement in by_table["events"])
    assert any("MODIFY COLUMN timestamp" in statement
               for statement in by_table["events_local"])
    # A mutation only where the rows are.
    updates = [statement for statement in alters if " UPDATE channel" in statement]
    assert [statement.split()[2] for statement in updates] == ["visits_local"]
    # A small table's ALTER goes through Keeper to every replica, not once per shard.
    for statement in by_table["api_keys"] + by_table["goals"]:
        assert "ON CLUSTER" not in statement


def test_an_alter_mixing_column_and_data_changes_is_refused() -> None:
    template = ("ALTER TABLE events{{on_cluster}} ADD COLUMN x UInt8, "
                "DELETE WHERE site = 'a';\n")
    with pytest.raises(ConfigurationError, match="two statements"):
        render(template, CLUSTER)
    assert render(template) == ["ALTER TABLE events ADD COLUMN x UInt8, "
                                "DELETE WHERE site = 'a'"]


def test_dropped_tables_free_their_keeper_path_at_once() -> None:
    """0005 drops the rollups and creates them again under the same names."""
    drops = [statement for statement in STATEMENTS if statement.startswith("DROP TABLE")]
    assert drops and all(statement.endswith(" SYNC") for statement in drops)
    dropped = {statement.split()[4] for statement in drops}
    assert {"visits_rollup", "visits_rollup_local"} <= dropped


def test_replicated_tables_deduplicate_replayed_batches_for_a_week() -> None:
    created = created_tables()
    for table in ("events_local", "visits_local", "drops_local", "visits_rollup_daily_local"):
        assert "replicated_deduplication_window = 10000, " \
               "replicated_deduplication_window_seconds = 604800" in created[table]
        assert "non_replicated" not in created[table]


def test_the_cluster_setting_is_read_and_checked() -> None:
    assert Settings.from_env({}).clickhouse_cluster == ""
    assert Settings.from_env(
        {"COLLECTOR_CLICKHOUSE_CLUSTER": "analytics-2"}).clickhouse_cluster == "analytics-2"
    with pytest.raises(ConfigurationError, match="COLLECTOR_CLICKHOUSE_CLUSTER"):
        Settings.from_env({"COLLECTOR_CLICKHOUSE_CLUSTER": "a`; DROP"})
    with pytest.raises(ConfigurationError, match="cluster name"):
        Deployment(cluster="a b")


def test_the_embedded_engine_is_never_migrated_as_a_cluster(store: Store) -> None:
    with pytest.raises(ConfigurationError, match="needs a ClickHouse server"):
        migrate(store, deployment=CLUSTER)


@pytest.fixture(scope="module")
def layout_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """What ``tests/cluster_layout.py`` found, run in a process of its own."""
    data_dir = tmp_path_factory.mktemp("cluster-layout") / "engine"
    finished = subprocess.run([sys.executable, "-m", "tests.cluster_layout", str(data_dir)],
                              cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    yield json.loads(finished.stdout.strip().splitlines()[-1])


def test_the_layout_runs_on_a_cluster_of_this_engine(layout_run: dict[str, Any]) -> None:
    assert layout_run["clusters"] == [["analytics", 1, 1]]  # one shard: this engine, local
    tables = layout_run["tables"]
    for table in ("events", "visits", "drops", "visits_rollup", "visits_rollup_daily",
                  "events_rollup_daily"):
        assert tables[table] == "Distributed" and tables[table + LOCAL_SUFFIX] != "Distributed"
    assert {"visits_rollup_mv", "visits_rollup_daily_mv", "events_rollup_daily_mv"} <= {
        name for name, engine in tables.items() if engine == "MaterializedView"}


def test_every_statement_migrate_sends_parses(layout_run: dict[str, Any]) -> None:
    sent, parsed = layout_run["sent"], layout_run["parsed"]
    assert len(parsed) == len(sent) > 60
    for statement, canonical in zip(sent, parsed):
        assert canonical.split()[:2] == statement.split()[:2], statement
    assert "SYSTEM SYNC REPLICA schema_migrations" in sent


def test_only_what_needs_keeper_differs_from_the_cluster_layout(
        layout_run: dict[str, Any]) -> None:
    """The check finds the layout complete but for replication, which needs Keeper; the
    columns and the views' dimensions match the declaration through the local tables."""
    (difference,) = layout_run["layout"]
    assert difference.startswith("not replicated: ")
    listed = set(re.findall(r"(\w+) \(\w+\)", difference))
    expected = {name for name, engine in layout_run["tables"].items()
                if engine not in ("Distributed", "MaterializedView")}
    assert listed == expected and SMALL_TABLES <= listed
    assert layout_run["declaration"] == []


def test_reports_through_distributed_tables_equal_one_nodes(layout_run: dict[str, Any]) -> None:
    clustered, single = layout_run["reports"]["clustered"], layout_run["reports"]["single"]
    assert clustered == single
    for name, (source, results) in clustered.items():
        assert source == name.split()[-1] and results, name
        if source == "rollup":  # the views on the local tables rolled up every row
            assert results == clustered[name.replace(" rollup", " raw")][1], name


def test_a_replayed_batch_through_the_distributed_table_is_stored_once(
        layout_run: dict[str, Any]) -> None:
    before, after = layout_run["replay"]["before"], layout_run["replay"]["after"]
    assert {table: after[table] - before[table] for table in before} == {
        "events": 1, "events_local": 1, "events_rollup_daily_local": 1}


def test_retention_alters_the_local_tables(layout_run: dict[str, Any]) -> None:
    assert layout_run["ttl"] == {"events_local": "6", "visits_local": "6",
                                 "visits_rollup_daily_local": "12", "events": "",
                                 "visits": ""}
    sent = layout_run["sent after retention"]
    # Under the store's lease (migration_lease), taken first and released last: collectors
    # change a TTL one at a time.
    assert "schema_migration_lock" in sent[0] and "schema_migration_lock" in sent[-1]
    altered = [statement for statement in sent if "schema_migration_lock" not in statement]
    assert altered and all(
        re.match(r"ALTER TABLE \w+_local ON CLUSTER `analytics` MODIFY TTL ", statement)
        for statement in altered)


def test_a_store_laid_out_for_another_deployment_is_refused(layout_run: dict[str, Any]) -> None:
    refused = layout_run["refused"]
    assert "set COLLECTOR_CLICKHOUSE_CLUSTER=analytics" in refused["cluster store as one node"]
    as_cluster = refused["one node's store as a cluster"]
    assert "events is MergeTree, not Distributed('analytics', 'single', 'events_local', " \
           "visitor)" in as_cluster
    assert "visits_rollup_daily_mv reads the Distributed table visits" in as_cluster

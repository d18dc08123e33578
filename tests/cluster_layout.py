"""The cluster layout run on the embedded engine, in a process of its own (test_cluster.py).

    python -m tests.cluster_layout DATA_DIR      prints one JSON object: what the run found

The engine is started with a configuration (``CONFIG``) declaring the cluster
``analytics`` of one shard whose only replica is this engine itself, so Distributed
tables over it run for real: inserts go through them to the local tables, the views
on the local tables fire, reads go through them. A process of its own because one
process runs one embedded engine, and the test session's has no cluster.

What the engine cannot do is what needs ClickHouse Keeper: ``ON CLUSTER`` DDL,
Replicated engines, ``SYSTEM SYNC REPLICA``. ``KeeperlessNode`` removes exactly those
from each statement before the engine sees it (keeping every statement as sent, for
the parser check), and nothing else: the rest of the layout runs as rendered.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import clickhouse_connect

from collector.errors import SchemaMismatch
from collector.event import EVENT_COLUMNS
from collector.reports.builder import SiteContext
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.reports.sampling import Sampler, SamplingPolicy
from collector.storage import Store, apply_retention, migrate
from collector.storage.cluster import SINGLE_NODE, Deployment
from collector.storage.migrations import available_migrations
from collector.storage.schema_check import layout_differences, schema_differences, verify_schema
from tests.reporting_data import SITE, day, make_event, sample_site_events, store_events

CLUSTER = Deployment(cluster="analytics")
CONFIG = """<clickhouse>
  <!-- Nothing listens here: the port only makes the replica below this engine itself. -->
  <tcp_port>9000</tcp_port>
  <remote_servers>
    <analytics>
      <shard>
        <internal_replication>true</internal_replication>
        <replica><host>localhost</host><port>9000</port></replica>
      </shard>
    </analytics>
  </remote_servers>
  <macros><shard>01</shard><replica>node-1</replica></macros>
</clickhouse>
"""
REPORTED = ("visit:source", "visit:channel", "visit:screen", "event:page")
_REPLICATED_ENGINE = re.compile(r"\bReplicated(\w+)\('[^']*', '[^']*'(?:, )?")
_REPLICATED_WINDOW = re.compile(r"\breplicated_deduplication_window = (\d+), "
                                r"replicated_deduplication_window_seconds = \d+")


class KeeperlessNode(Store):
    """A store on this engine that stands in for one node of the cluster: what needs
    Keeper is taken out of each statement (see the module's docstring)."""

    def __init__(self, client: Any, database: str, url: str) -> None:
        super().__init__([client], database, url)
        self.embedded = False  # a node of a cluster, as far as migrate() is concerned
        self.sent: list[str] = []

    def command(self, sql: str, parameters: dict[str, Any] | None = None,
                settings: dict[str, Any] | None = None) -> Any:
        self.sent.append(sql)
        if sql.startswith("SYSTEM SYNC REPLICA"):
            return None  # nothing to fetch from other replicas: there are none
        return super().command(without_keeper(sql), parameters, settings)


def without_keeper(sql: str) -> str:
    sql = sql.replace(CLUSTER.on_cluster, "")
    sql = _REPLICATED_ENGINE.sub(lambda match: match.group(1) + "(", sql)
    return _REPLICATED_WINDOW.sub(r"non_replicated_deduplication_window = \1", sql)


def open_node(data_dir: Path, database: str, config: Path) -> KeeperlessNode:
    options = {"config-file": str(config)}
    bootstrap = clickhouse_connect.get_client(dsn=f"chdb://{data_dir}", chdb_options=options)
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    client = clickhouse_connect.get_client(dsn=f"chdb://{data_dir}", chdb_options=options,
                                           database=database)
    return KeeperlessNode(client, database, f"chdb://{data_dir}")


def reports(store: Store) -> dict[str, Any]:
    """Each dimension's report from the rollups and from the raw tables."""
    rollups = Sampler(SamplingPolicy(exact_visitors_up_to_visits=0,
                                     sixteenth_up_to_visits=10 ** 12))
    now = datetime.combine(day(5), datetime.min.time(), UTC) + timedelta(hours=12)
    answers = {}
    for name in REPORTED:
        metrics = ["visitors", "visits"] if name.startswith("visit:") else ["visitors", "events"]
        spec = parse_query({"site_id": SITE, "metrics": metrics, "dimensions": [name],
                            "date_range": [day(0).isoformat(), day(1).isoformat()]})
        for source, force_raw in (("rollup", False), ("raw", True)):
            report = run_report(store, spec, SiteContext(SITE), now, force_raw=force_raw,
                                sampler=rollups)
            answers[f"{name} {source}"] = [report.meta["source"], report.results]
    return answers


def counts(store: Store, tables: list[str]) -> dict[str, int]:
    return {table: int(store.rows(f"SELECT count() FROM {table}")[0][0]) for table in tables}


def run(data_dir: Path) -> dict[str, Any]:
    config = data_dir.parent / "cluster-config.xml"
    config.write_text(CONFIG)
    clustered = open_node(data_dir, "clustered", config)
    single = open_node(data_dir, "single", config)
    found: dict[str, Any] = {
        "clusters": clustered.rows("SELECT cluster, shard_num, is_local FROM system.clusters")}
    # Every migration, without the final check: its one complaint here, engines that are
    # not Replicated, is what the engine cannot run; the test reads the check's findings.
    last = max(version for version, _, _ in available_migrations())
    migrate(clustered, deployment=CLUSTER, up_to=last, rollup_retention_months=25)
    migrate(single, rollup_retention_months=25)
    found["sent"] = list(clustered.sent)
    found["parsed"] = [clustered.rows("SELECT formatQuery({sql:String})", {"sql": sql})[0][0]
                       for sql in found["sent"]]
    found["layout"] = layout_differences(clustered, CLUSTER)
    found["declaration"] = [difference for difference in schema_differences(clustered, CLUSTER)
                            if difference not in found["layout"]]
    found["tables"] = dict(clustered.rows(
        "SELECT name, engine FROM system.tables WHERE database = currentDatabase()"))
    for store in (clustered, single):
        store_events(store, sample_site_events())
    found["reports"] = {"clustered": reports(clustered), "single": reports(single)}
    # A batch the write-ahead log replays (same token) through the Distributed table.
    replayed = [make_event(int(datetime.combine(day(2), datetime.min.time(), UTC).timestamp()
                               * 1000), 77, "/replayed")]
    before = counts(clustered, ["events", "events_local", "events_rollup_daily_local"])
    for _ in range(2):
        columns = list(zip(*replayed))
        clustered.insert_columns("events", EVENT_COLUMNS, columns, token="batch-77")
    found["replay"] = {"before": before, "after": counts(
        clustered, ["events", "events_local", "events_rollup_daily_local"])}
    apply_retention(clustered, 6, CLUSTER, rollup_months=12)
    found["sent after retention"] = clustered.sent[len(found["sent"]):]
    found["ttl"] = dict(clustered.rows(
        "SELECT name, extract(create_table_query, 'toIntervalMonth\\((\\d+)\\)') "
        "FROM system.tables "
        "WHERE database = currentDatabase() AND name IN ('events_local', 'visits_local', "
        "'visits_rollup_daily_local', 'events', 'visits')"))
    found["refused"] = {}
    for label, store, deployment in (("cluster store as one node", clustered, SINGLE_NODE),
                                     ("one node's store as a cluster", single, CLUSTER)):
        try:
            verify_schema(store, deployment)
            found["refused"][label] = ""
        except SchemaMismatch as mismatch:
            found["refused"][label] = str(mismatch)
    return found


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1])), default=str))

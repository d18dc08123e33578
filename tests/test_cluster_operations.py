"""Purge, erasure, export and the daily purge on a ClickHouse cluster
(``COLLECTOR_CLICKHOUSE_CLUSTER``), run for real over HTTP on the cluster layout of one
shard (``tests/cluster_http_server.py``) and compared with the same operations on one
node; every statement they send parsed by ClickHouse's own parser.

The fixture's tables are not Replicated (that needs Keeper), which the collector's
startup check refuses on a cluster: the stores here are migrated without that last
check (``migrate(up_to=...)``, as ``tests/cluster_layout.py`` does) and the operations
called as the runner calls them.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from collector.reports.sampling import Sampler
from collector.settings import Settings
from collector.storage import Store, migrate, open_store
from collector.storage.cluster import LOCAL_SUFFIX, SHARDING_KEYS, Deployment
from collector.storage.migrations import available_migrations
from tests.cluster_http_server import ClusterHttpServer
from tests.conftest import fresh_database_name
from tests.removal_support import own_store, reports_disagree, row_counts, run, token
from tests.reporting_data import SITE, at, day, make_event, sample_site_events, store_events
from tests.test_drops import store_drops
from tests.test_serve import free_port

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = Deployment(cluster="analytics")
ON_CLUSTER = CLUSTER.on_cluster
SETTINGS = Settings.from_env({"COLLECTOR_CLICKHOUSE_CLUSTER": "analytics"})
OTHER = "other.test"
MIDDLE, OLD = -25, -80  # days before reporting_data's first day, as in test_retention
# What changes stored rows: on a cluster only ever the local tables, on every shard.
_CHANGES_ROWS = re.compile(r"^ALTER TABLE (\w+)(.*?) (DELETE|DROP PARTITION|MODIFY TTL)\b",
                           re.DOTALL)
# Runs DailyPurge once on the store at argv[1] as a collector of the cluster would.
_DAILY_PURGE = """if True:
    import json, logging, sys
    from collector.operations.retention import DailyPurge
    from collector.settings import Settings
    from collector.storage import open_store
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    store = open_store(sys.argv[1])
    settings = Settings.from_env({"COLLECTOR_CLICKHOUSE_CLUSTER": "analytics"})
    result = DailyPurge(store, settings).run()
    print(json.dumps(None if result is None else result["rows"]))
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHttpServer]:
    root = tmp_path_factory.mktemp("cluster-operations")
    with ClusterHttpServer(root / "data", free_port(), root / "server.log") as server:
        yield server


def clustered_store(cluster: ClusterHttpServer, label: str) -> Store:
    """A fresh database of the cluster, migrated for it (all but the final check)."""
    store = open_store(cluster.url(fresh_database_name(label)))
    last = max(version for version, _, _ in available_migrations())
    migrate(store, deployment=CLUSTER, up_to=last, rollup_retention_months=25)
    return store


def seed(store: Store, settings: Settings, tokens: dict[str, str]) -> None:
    """test_retention's and test_erase's traffic together: old rows past SITE's tiers
    (1 month raw, 2 of rollups), a private page inside a visit, another site."""
    store_events(store, [
        *sample_site_events(),
        make_event(at("15:00"), 40, "/"),
        make_event(at("15:01"), 40, f"/private/{tokens['private']}"),
        make_event(at("15:02"), 40, "/pricing"),
        # Visitors of their own on the days past SITE's tiers, and OTHER's on the same days.
        *(make_event(at(clock, offset), visitor, page, site=site) for clock, offset, visitor,
          page, site in (("09:30", MIDDLE, 60, f"/middle/{tokens['middle']}", SITE),
                         ("09:40", MIDDLE, 60, "/pricing", SITE),
                         ("09:50", MIDDLE, 61, "/other-middle", OTHER),
                         ("08:00", OLD, 62, f"/old/{tokens['old']}", SITE),
                         ("08:30", 0, 63, "/other-now", OTHER))),
    ])
    store_drops(store, [(site, at("08:00", offset), reason) for site, offset, reason in (
        (SITE, OLD, "bot"), (SITE, MIDDLE, "spam"), (SITE, 0, "bot"), (OTHER, MIDDLE, "bot"))])
    run(store, "retention.set", settings, site=SITE, raw_months=1, rollup_months=2)


@pytest.fixture
def stores(cluster: ClusterHttpServer, engine_url: str) -> Iterator[tuple[Store, Store]]:
    """The same rows on the cluster and on one node."""
    clustered, single = clustered_store(cluster, "clustered"), own_store(engine_url, "single")
    tokens = {"middle": token(), "old": token(), "private": token()}
    seed(clustered, SETTINGS, tokens)
    seed(single, Settings.from_env({}), tokens)
    yield clustered, single
    clustered.close()
    single.close()


def sent_during(cluster: ClusterHttpServer, before: int) -> list[str]:
    return cluster.statements_sent()[before:]


def assert_parsed_and_local(store: Store, statements: list[str]) -> list[str]:
    """Every statement parses with ClickHouse's parser (the test session's engine), and
    each one changing stored rows goes to a local table ON CLUSTER, or to a table
    replicated everywhere without it; the statements changing rows."""
    changing = []
    for statement in statements:
        canonical = store.rows("SELECT formatQuery({sql:String})", {"sql": statement})[0][0]
        assert canonical.split()[0] == statement.split()[0], statement
        if match := _CHANGES_ROWS.match(statement):
            table, between = match.group(1), match.group(2)
            base = table.removesuffix(LOCAL_SUFFIX)
            if base in SHARDING_KEYS:
                assert table == base + LOCAL_SUFFIX and between == ON_CLUSTER, statement
            else:
                assert between == "", statement
            changing.append(statement)
    return changing


def parts_of(store: Store, table: str) -> set[str]:
    """The partitions of ``table``'s stored rows on every replica."""
    return {row[0] for row in store.rows(
        f"SELECT DISTINCT partition_id FROM {CLUSTER.parts} WHERE database = {{db:String}} "
        "AND table = {table:String} AND active",
        {"db": store.database, "table": CLUSTER.stored_table(table)})}


def without_bytes(tables: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A removal's tables without the bytes, which depend on how parts were merged."""
    return {table: {key: value for key, value in entry.items() if key != "bytes"}
            for table, entry in tables.items()}


def test_the_purge_removes_on_every_shard_what_one_node_removes(
        cluster: ClusterHttpServer, stores: tuple[Store, Store],
        rollups_in_use: Sampler) -> None:
    clustered, single = stores
    planned = run(clustered, "retention.purge", SETTINGS)
    assert without_bytes(planned["tables"]) == without_bytes(
        run(single, "retention.purge")["tables"])
    assert all(entry["bytes"] > 0 for entry in planned["tables"].values())
    before = len(cluster.statements_sent())
    purged = run(clustered, "retention.purge", SETTINGS, dry_run=False)
    expected = run(single, "retention.purge", dry_run=False)
    assert without_bytes(purged["tables"]) == without_bytes(expected["tables"])
    assert purged["rows"] == expected["rows"] > 0
    assert row_counts(clustered) == row_counts(single)
    assert row_counts(clustered, OTHER) == row_counts(single, OTHER)
    # The month holding expired rows only is gone from the local tables; another was
    # rewritten in place.
    month = day(OLD).strftime("%Y%m")
    for table in ("events", "visits", "visits_rollup_daily", "drops"):
        assert month in purged["tables"][table]["partitions_dropped"], table
        assert month not in parts_of(clustered, table), table
    assert purged["tables"]["events"]["partitions_rewritten"] == [day(MIDDLE).strftime("%Y%m")]
    assert reports_disagree(clustered, SITE, day(0), day(1), rollups_in_use) == []
    statements = sent_during(cluster, before)
    changing = assert_parsed_and_local(single, statements)
    assert any(" DROP PARTITION ID " in statement for statement in changing)
    assert any(" DELETE IN PARTITION ID " in statement for statement in changing)
    assert any("clusterAllReplicas('analytics', system.parts)" in statement
               for statement in statements)
    (entry,) = run(clustered, "audit.list", SETTINGS)["entries"]
    assert entry["command"] == "purge" and entry["rows"] == purged["rows"]
    assert run(clustered, "retention.purge", SETTINGS)["rows"] == 0


def test_an_erasure_removes_exactly_the_matching_rows_on_every_shard(
        cluster: ClusterHttpServer, stores: tuple[Store, Store],
        rollups_in_use: Sampler) -> None:
    clustered, single = stores
    before = len(cluster.statements_sent())
    erased = run(clustered, "erase.matching", SETTINGS, site=SITE, path_like="/private/%",
                 yes=True)
    expected = run(single, "erase.matching", site=SITE, path_like="/private/%", yes=True)
    assert without_bytes(erased["tables"]) == without_bytes(expected["tables"])
    assert erased["tables"]["events"]["rows"] == 1 and erased["tables"]["visits"]["rows"] == 1
    assert erased["days_rebuilt"] == [day(0).isoformat()]
    for store in (clustered, single):
        assert store.rows("SELECT pathname FROM events WHERE visitor = 40 "
                          "ORDER BY timestamp") == [("/",), ("/pricing",)]
        assert store.rows("SELECT count() FROM visits WHERE visitor = 40")[0][0] == 0
    assert row_counts(clustered) == row_counts(single)
    assert row_counts(clustered, OTHER) == row_counts(single, OTHER)
    assert reports_disagree(clustered, SITE, day(0), day(1), rollups_in_use) == []
    statements = sent_during(cluster, before)
    changing = assert_parsed_and_local(single, statements)
    # Visits go by their events on the same shard: the local events table, never the
    # Distributed one inside the distributed read.
    (visits,) = [statement for statement in changing if statement.startswith(
        "ALTER TABLE visits_local") and " DELETE " in statement]
    assert "visit IN (SELECT visit FROM events_local WHERE " in visits
    # The rollups of the day rolled up again through the Distributed tables.
    assert any(statement.startswith("INSERT INTO visits_rollup_daily SELECT")
               for statement in statements)
    (entry,) = run(clustered, "audit.list", SETTINGS)["entries"]
    assert entry["command"] == "erase" and entry["tables"]["events"]["rows"] == 1


def test_erasing_a_whole_site_on_a_cluster(stores: tuple[Store, Store]) -> None:
    clustered, single = stores
    erased = run(clustered, "erase.site", SETTINGS, site=OTHER, yes=True)
    expected = run(single, "erase.site", site=OTHER, yes=True)
    assert without_bytes(erased["tables"]) == without_bytes(expected["tables"])
    assert row_counts(clustered, OTHER) == dict.fromkeys(row_counts(clustered, OTHER), 0)
    assert row_counts(clustered, SITE) == row_counts(single, SITE)


@pytest.mark.parametrize("format_name", ["jsonl", "csv"])
def test_an_export_reads_every_shard(stores: tuple[Store, Store], tmp_path: Path,
                                     format_name: str) -> None:
    clustered, single = stores
    files = {}
    for label, store, settings in (("clustered", clustered, SETTINGS),
                                   ("single", single, Settings.from_env({}))):
        output = tmp_path / f"{label}.{format_name}"
        result = run(store, "export.export", settings, site=SITE,
                     from_date=day(OLD).isoformat(), to_date=day(1).isoformat(),
                     format=format_name, output=str(output))
        assert result["rows"]["events"] == row_counts(store, SITE)["events"] > 0
        files[label] = {Path(path).name.replace(label, ""): sorted(
            Path(path).read_bytes().splitlines()) for path in result["files"]}
    assert files["clustered"] == files["single"]


def test_an_aggregate_export_on_a_cluster(stores: tuple[Store, Store], tmp_path: Path) -> None:
    clustered, single = stores
    exported = []
    for store, settings in ((clustered, SETTINGS), (single, Settings.from_env({}))):
        output = tmp_path / f"{store.database}.jsonl"
        run(store, "export.export", settings, site=SITE, from_date=day(0).isoformat(),
            to_date=day(1).isoformat(), aggregate=True, output=str(output))
        exported.append(output.read_text())
    assert exported[0] == exported[1] and exported[0].count("\n") > 5


def test_collectors_of_a_cluster_purging_at_once_purge_once(
        cluster: ClusterHttpServer, stores: tuple[Store, Store]) -> None:
    """Their daily duties find a purge due at the same moment: they take turns under the
    store's lease, and the second finds the first's audit row."""
    clustered, _ = stores
    url = cluster.url(clustered.database)
    duties = [subprocess.Popen([sys.executable, "-c", _DAILY_PURGE, url], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
              for _ in range(2)]
    outcomes, logs = [], []
    for duty in duties:
        output, errors = duty.communicate(timeout=300)
        assert duty.returncode == 0, errors[-3000:]
        outcomes.append(json.loads(output.strip().splitlines()[-1]))
        logs.append(errors)
    purged = [rows for rows in outcomes if rows is not None]
    assert len(purged) == 1 and purged[0] > 0, outcomes
    # Both found it due before either had purged: one waited for the other's lease.
    assert sum("another collector is purging" in log for log in logs) == 1, logs
    purges = run(clustered, "audit.list", SETTINGS, command="purge")["entries"]
    assert len(purges) == 1 and purges[0]["scope"]["trigger"] == "daily"
    assert run(clustered, "retention.purge", SETTINGS)["rows"] == 0


def test_the_compliance_statement_reads_the_ttl_of_the_local_tables(
        stores: tuple[Store, Store], tmp_path: Path) -> None:
    clustered, single = stores
    enforced = [run(store, "compliance.check", settings)["retention"]["enforced_months"]
                for store, settings in ((clustered, Settings.from_env(
                    {"COLLECTOR_CLICKHOUSE_CLUSTER": "analytics"}, data_dir=tmp_path)),
                    (single, Settings.from_env({}, data_dir=tmp_path)))]
    assert enforced[0] == enforced[1]
    assert enforced[0]["events"] == 13 and enforced[0]["visits_rollup_daily"] == 25

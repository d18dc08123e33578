"""``collector copy --to http://...``: an embedded installation moved onto a server, row for row.

The source is a real data directory written by the commands an operator runs
(``sites add``, ``demo``, ``keys create``...), the target a database of the ClickHouse
HTTP fixture; the copy runs as the real command, is killed part way and run again,
and what each side holds is read independently of the copy's own checks.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.storage import Store, migrate, open_store
from collector.wal import SUFFIX
from tests.clickhouse_http_server import ClickHouseHttpServer
from tests.cluster_http_server import ClusterHttpServer
from tests.conftest import fresh_database_name
from tests.reporting_data import sample_site_events, store_events
from tests.test_serve import collector_env, free_port, start_serving
from tests.test_server_path import Collector, wait_for

SITE = "shop.test"
# What both sides are compared by: raw rows whole, what merges as merged.
CONTENTS = {
    "events": "SELECT count(), sum(cityHash64(*)) FROM events",
    "visits": "SELECT count(), sum(cityHash64(*)) FROM visits FINAL",
    "visits_rollup_daily": "SELECT count(), sum(cityHash64(site, dimension, hour, value, "
                           "visits, pageviews, finalizeAggregation(visitors_s16))) "
                           "FROM visits_rollup_daily FINAL",
    "events_rollup_daily": "SELECT count(), sum(events), "
                           "sum(finalizeAggregation(visitors_s16)) FROM events_rollup_daily FINAL",
    "salts": "SELECT groupArray(toString(day)) FROM (SELECT day FROM salts ORDER BY day)",
    **{table: f"SELECT count(), sum(cityHash64(*)) FROM {table} FINAL"
       for table in ("sites", "api_keys", "goals", "report_settings", "site_retention")},
}
# Runs ``collector ARGS`` once per line of JSON arguments in one process (one engine start),
# printing each exit code and output; then any SQL given after ``--`` on the same store.
_SESSION = """if True:
    import contextlib, io, json, sys
    from collector.cli import main
    from collector.settings import Settings
    from collector.storage import open_store
    split = sys.argv.index("--")
    answers = []
    for args in sys.argv[1:split]:
        with contextlib.redirect_stdout(io.StringIO()) as out:
            code = main(json.loads(args))
        answers.append([code, out.getvalue()])
    store = open_store(Settings.from_env().store_url) if split + 1 < len(sys.argv) else None
    for sql in sys.argv[split + 1:]:
        store.command(sql, settings={"mutations_sync": 2}) if sql.startswith(("ALTER", "INSERT")) \
            else answers.append(json.loads(json.dumps(store.rows(sql), default=str)))
    print(json.dumps(answers))
"""
# The copy onto the cluster fixture's database (argv[1]), migrated for the cluster but for
# the final check, which the fixture's tables fail: they are not Replicated.
_COPY_ONTO_CLUSTER = """if True:
    import json, sys
    from collector.operations import OperationContext
    from collector.operations.copy import copy_to
    from collector.settings import Settings
    from collector.storage import open_store
    from collector.storage.cluster import Deployment
    settings = Settings.from_env()
    source, target = open_store(settings.store_url), open_store(sys.argv[1])
    print(json.dumps(copy_to(OperationContext(source, settings), target,
                             Deployment("analytics", target.database), sys.argv[1])))
"""


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseHttpServer]:
    root = tmp_path_factory.mktemp("copy-target")
    with ClickHouseHttpServer(root / "data", free_port(), root / "server.log") as server:
        yield server


def collector(data_dir: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args],
                          env={**os.environ, "COLLECTOR_DATA_DIR": str(data_dir),
                               "COLLECTOR_LOG_LEVEL": "warning", **variables},
                          capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def on_source(data_dir: Path, commands: list[list[str]], sql: Sequence[str] = ()) -> list[Any]:
    """Each command's output (all must succeed), then each SELECT's rows (ALTER and INSERT
    run), on the embedded store of ``data_dir``, in one process of its own."""
    result = subprocess.run(
        [sys.executable, "-c", _SESSION, *map(json.dumps, commands), "--", *sql],
        env={**os.environ, "COLLECTOR_DATA_DIR": str(data_dir), "COLLECTOR_LOG_LEVEL": "warning"},
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    answers = list(json.loads(result.stdout))
    for code, output in answers[:len(commands)]:
        assert code == 0, output
    return [output for _, output in answers[:len(commands)]] + answers[len(commands):]


def source_contents(data_dir: Path) -> dict[str, Any]:
    return dict(zip(CONTENTS, on_source(data_dir, [], list(CONTENTS.values()))))


def target_contents(store: Store) -> dict[str, Any]:
    return {table: json.loads(json.dumps(store.rows(sql), default=str))
            for table, sql in CONTENTS.items()}


def make_installation(data_dir: Path, events: int, days: int, *sql: str) -> str:
    """A site with traffic, a key, a share link, a goal, thresholds and a retention (then
    ``sql`` run on the store); returns the key."""
    outputs = on_source(data_dir, [
        ["sites", "add", SITE, "--timezone", "Europe/Berlin"],
        ["sites", "exclude", SITE, "--path", "/admin/*"],
        ["demo", "--site", SITE, "--events", str(events), "--days", str(days)],
        ["keys", "create", "--site", SITE],
        ["keys", "create", "--site", SITE, "--share"],
        ["goals", "add", "--site", SITE, "--page", "/pricing*"],
        ["keys", "threshold", "--site", SITE, "--public-k", "7"],
        ["retention", "set", SITE, "--raw-months", "6"]], list(sql))
    return str(outputs[3]).splitlines()[-1]


def test_copy_moves_everything_and_a_second_run_only_verifies(
        clickhouse: ClickHouseHttpServer, tmp_path: Path) -> None:
    source = tmp_path / "source"
    today = dt.datetime.now(dt.UTC).date()
    oldest = str(today - dt.timedelta(days=3))  # the demo's first day
    key = make_installation(
        source, 3000, 4,
        # Salts of three days ago (a server stopped since) must not move; today's must.
        "INSERT INTO salts (day, salt, created_ms) VALUES (today() - 3, repeat('a', 64), 1), "
        "(today() - 1, repeat('b', 64), 2), (today(), repeat('c', 64), 3)",
        # A day whose raw rows are gone while its rollups remain (a purge).
        "ALTER TABLE events DELETE WHERE toDate(timestamp) = "
        "(SELECT min(toDate(timestamp)) FROM events)",
        "ALTER TABLE visits DELETE WHERE toDate(start_time) = "
        "(SELECT min(toDate(start_time)) FROM visits)")
    url = clickhouse.url(fresh_database_name("moved"))
    copied = json.loads(ok(collector(source, "copy", "--to", url, "--json")))
    assert copied["verified"] is True
    tables = {table["table"]: table for table in copied["tables"]}
    assert tables["events"]["source_rows"] == tables["events"]["target_rows"] > 0
    assert all(table["source_rows"] == table["target_rows"] for table in tables.values())
    assert [row["day"] for row in tables["salts"]["days"]] == \
        [str(today - dt.timedelta(days=1)), str(today)]

    target = open_store(url)
    try:
        moved = target_contents(target)
    finally:
        target.close()
    kept = source_contents(source)
    assert moved["salts"] == [[[str(today - dt.timedelta(days=1)), str(today)]]]
    kept["salts"] = moved["salts"]  # the only difference: the salt of three days ago
    assert moved == kept
    assert moved["visits_rollup_daily"] != [[0, 0]] and moved["api_keys"][0][0] == 2

    again = json.loads(ok(collector(source, "copy", "--to", url, "--json")))
    assert again["verified"] is True
    assert {table["table"]: table["sent_rows"] for table in again["tables"]} == \
        {name: 0 for name in tables}
    assert again["tables"] == [{**table, "sent_rows": 0} for table in copied["tables"]]

    # A server ran on the directory since (traffic of the last 24 hours): a third run
    # moves the changed days again, and only them, with their rollups (rebuilt on top of
    # the days' first copy, they differ from the source's and are replaced).
    on_source(source, [["demo", "--site", SITE, "--events", "300", "--days", "1",
                        "--seed", "2"]])
    third = json.loads(ok(collector(source, "copy", "--to", url, "--json")))
    assert third["verified"] is True
    def events_by_day(result: dict[str, Any]) -> dict[str, int]:
        events = next(table for table in result["tables"] if table["table"] == "events")
        return {row["day"]: row["source"] for row in events["days"]}

    changed = {day for day, count in events_by_day(third).items()
               if events_by_day(again).get(day) != count}
    assert changed and changed <= {str(today - dt.timedelta(days=1)), str(today)}
    rows_of_changed_days = {table["table"]: sum(row["source"] for row in table["days"]
                                                if row["day"] in changed)
                            for table in third["tables"]}
    assert {table["table"]: table["sent_rows"] for table in third["tables"]
            if table["sent_rows"]} == {name: rows_of_changed_days[name] for name in (
                "events", "visits", "visits_rollup", "visits_rollup_daily",
                "events_rollup_daily")}
    target = open_store(url)
    try:
        assert target_contents(target) == {**source_contents(source), "salts": moved["salts"]}
    finally:
        target.close()

    # Reports from the server with the key made on the embedded store: the same answers.
    query = {"site_id": SITE, "date_range": [oldest, str(today)],
             "metrics": ["visitors", "visits", "pageviews", "bounce_rate"],
             "dimensions": ["time:day"]}
    answers = []
    for env in (collector_env(source, free_port()),
                Collector(tmp_path, "on-server", url).env):
        port = int(env["COLLECTOR_PORT"])
        process = start_serving(env, port, tmp_path / f"serve-{port}.log")
        try:
            answers.append(httpx.post(f"http://127.0.0.1:{port}/api/v2/query", json=query,
                                      headers={"Authorization": f"Bearer {key}"},
                                      timeout=30).json()["results"])
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
    # (The purged day is not among them: reports of so few rows read the raw tables.)
    assert answers[0] == answers[1] and len(answers[0]) == 3


def test_an_interrupted_copy_resumes_and_stores_nothing_twice(
        clickhouse: ClickHouseHttpServer, tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_installation(source, events=20_000, days=2)
    url = clickhouse.url(fresh_database_name("resumed"))
    target = open_store(url)
    try:
        with (tmp_path / "first.log").open("wb") as log:
            first = subprocess.Popen(
                [sys.executable, "-m", "collector", "copy", "--to", url, "--batch-rows", "200"],
                env={**os.environ, "COLLECTOR_DATA_DIR": str(source)}, stdout=log,
                stderr=subprocess.STDOUT)
        checkpoints = source / "copy"

        def mid_unit() -> bool:
            """A unit of events finished, and the next one begun, part of it stored."""
            found = list(checkpoints.glob("*.json"))
            units = json.loads(found[0].read_text())["units"] if found else {}
            events = {key: unit for key, unit in units.items() if key.startswith("events:")}
            begun = [key for key, unit in events.items() if not unit["done"]]
            return (len(events) - len(begun) >= 1 and len(begun) == 1 and target.rows(
                "SELECT count() FROM events WHERE toDate(timestamp) = {day:Date}",
                {"day": begun[0].split(":", 1)[1]})[0][0] > 0)

        wait_for(lambda: first.poll() is not None or mid_unit(), 120, "the copy half way")
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=60) == -signal.SIGKILL, (tmp_path / "first.log").read_text()
        [[[total]]] = on_source(source, [], ["SELECT count() FROM events"])
        partial = target.rows("SELECT count() FROM events")[0][0]
        assert 0 < partial < total

        resumed = json.loads(ok(collector(source, "copy", "--to", url, "--batch-rows", "200",
                                          "--json")))
        assert resumed["verified"] is True
        events = next(table for table in resumed["tables"] if table["table"] == "events")
        assert events["target_rows"] == total
        assert events["sent_rows"] < total  # the finished day was not sent again
        moved = target_contents(target)
    finally:
        target.close()
    assert moved == source_contents(source)


def test_copy_refuses_a_live_source_unwritten_rows_and_a_database_in_use(
        clickhouse: ClickHouseHttpServer, tmp_path: Path) -> None:
    source = tmp_path / "source"
    ok(collector(source, "sites", "add", SITE))
    url = clickhouse.url(fresh_database_name("refused"))
    port = free_port()
    serving = start_serving(collector_env(source, port), port, tmp_path / "serve.log")
    try:
        refused = collector(source, "copy", "--to", url)
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(timeout=60)
    assert refused.returncode == 1
    assert "`collector serve` is running on this data directory" in refused.stderr

    not_a_server = collector(source, "copy", "--to", f"chdb://{tmp_path / 'other'}")
    assert not_a_server.returncode == 1 and "name a ClickHouse server" in not_a_server.stderr

    # A database that collectors already write to is not a copy's to fill.
    in_use = open_store(url)
    try:
        migrate(in_use)
        store_events(in_use, sample_site_events()[:1])
    finally:
        in_use.close()
    foreign = collector(source, "copy", "--to", url)
    assert foreign.returncode == 1 and "already holds 1 events" in foreign.stderr

    (source / "wal").mkdir(exist_ok=True)
    (source / "wal" / f"00000000000000000001{SUFFIX}").write_bytes(b"")
    unwritten = collector(source, "copy", "--to", clickhouse.url(fresh_database_name("w")))
    assert unwritten.returncode == 1 and "holds 1 batches not yet stored" in unwritten.stderr


def test_copy_is_listed_with_its_options() -> None:
    shown = subprocess.run([sys.executable, "-m", "collector", "copy", "--help"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "--to URL" in shown.stdout and "--batch-rows" in shown.stdout
    missing = subprocess.run([sys.executable, "-m", "collector", "copy"],
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "Missing option '--to'" in missing.stderr


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterHttpServer]:
    root = tmp_path_factory.mktemp("copy-cluster")
    with ClusterHttpServer(root / "data", free_port(), root / "server.log") as server:
        yield server


def test_copy_onto_a_cluster_goes_through_the_distributed_tables(
        cluster: ClusterHttpServer, store: Store, tmp_path: Path) -> None:
    """Onto the cluster layout of one shard served over HTTP (tests/cluster_http_server.py):
    the copy below the command, whose last step, the migrated store's check, refuses
    the fixture's tables for not being Replicated (that needs Keeper)."""
    source = tmp_path / "source"
    make_installation(
        source, 2000, 3,
        "INSERT INTO salts (day, salt, created_ms) VALUES (today() - 3, repeat('a', 64), 1), "
        "(today(), repeat('c', 64), 3)",
        "ALTER TABLE events DELETE WHERE toDate(timestamp) = "
        "(SELECT min(toDate(timestamp)) FROM events)")
    url = cluster.url(fresh_database_name("onto_cluster"))
    # The command lays the target out for the cluster; its startup check then refuses what
    # the fixture cannot be (tables replicated through Keeper).
    before = len(cluster.statements_sent())
    refused = collector(source, "copy", "--to", url, "--cluster", "analytics")
    assert refused.returncode == 1 and "not replicated: " in refused.stderr
    laid_out = cluster.statements_sent()[before:]
    assert any(statement.startswith("CREATE TABLE IF NOT EXISTS events_local ON CLUSTER "
                                    "`analytics`") for statement in laid_out)
    assert "--cluster NAME" in ok(collector(source, "copy", "--help"))

    target = open_store(url)
    try:
        result, sent = copy_onto_cluster(cluster, source, url)
        moved, local = target_contents(target), {table: target.rows(
            f"SELECT count() FROM {table}_local")[0][0] for table in ("events", "visits")}
        kept = source_contents(source)
        # Traffic of the last day since: the days that changed move again, their rollups
        # (rolled up on the target on top of the first copy) replaced in the local tables.
        on_source(source, [["demo", "--site", SITE, "--events", "300", "--days", "1",
                            "--seed", "2"]])
        again, sent_again = copy_onto_cluster(cluster, source, url)
        moved_again = target_contents(target)
    finally:
        target.close()
    assert result["verified"] is True and result["cluster"] == "analytics"
    tables = {table["table"]: table for table in result["tables"]}
    # Through the Distributed tables: their local tables hold every row.
    assert local["events"] == tables["events"]["target_rows"] == tables["events"][
        "source_rows"] > 0
    assert local["visits"] >= tables["visits"]["target_rows"] > 0  # updates not yet merged
    assert {table for table in tables} >= {"events", "visits", "sites", "api_keys",
                                           "visits_rollup_daily", "drops"}
    assert not any(name.endswith("_local") for name in tables)
    inserted = {statement.split()[2] for statement in sent if statement.startswith("INSERT")}
    # (events_rollup_daily: the day whose raw events are gone, from the source's rollups)
    assert {"events", "visits", "events_rollup_daily"} <= inserted
    assert not any(name.endswith("_local") for name in inserted)
    for statement in sent + sent_again:
        canonical = store.rows("SELECT formatQuery({sql:String})", {"sql": statement})[0][0]
        assert canonical.split()[0] == statement.split()[0], statement
    today = dt.datetime.now(dt.UTC).date()
    assert moved["salts"] == [[[str(today)]]]  # not the salt of three days ago
    assert moved == {**kept, "salts": moved["salts"]}
    assert again["verified"] is True
    assert moved_again == {**source_contents(source), "salts": moved["salts"]}
    assert any(re.match(r"ALTER TABLE \w+_rollup\w*_local ON CLUSTER `analytics` DELETE WHERE ",
                        statement) for statement in sent_again)


def copy_onto_cluster(cluster: ClusterHttpServer, source: Path,
                      url: str) -> tuple[dict[str, Any], list[str]]:
    """The copy's result, and the statements the cluster received meanwhile."""
    before = len(cluster.statements_sent())
    copied = subprocess.run([sys.executable, "-c", _COPY_ONTO_CLUSTER, url],
                            env={**os.environ, "COLLECTOR_DATA_DIR": str(source),
                                 "COLLECTOR_LOG_LEVEL": "warning"},
                            capture_output=True, text=True, timeout=300)
    assert copied.returncode == 0, copied.stderr[-3000:]
    return (json.loads(copied.stdout.strip().splitlines()[-1]),
            cluster.statements_sent()[before:])

"""The ``http://`` store path: the real engine behind ClickHouse's HTTP interface.

``tests/clickhouse_http_server.py`` serves the interface from chdb in a process of its
own; here clickhouse-connect speaks to it as to a server, real ``collector serve``
processes share it (two at once, behind the routing deploy/README.md prescribes:
each client address to the same collector), commands run against it, and it is
killed and started again under load.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import clickhouse_connect
import httpx
import pytest

from collector.app import SITE_REFRESH_SECONDS
from collector.errors import StorageError, StorageUnavailable
from collector.event import EVENT_COLUMNS
from collector.privacy.visitor import visitor_hash
from collector.storage import Store, migrate, open_store
from collector.storage.cluster import SINGLE_NODE
from collector.storage.migration_lease import TABLE as LEASE_TABLE
from collector.storage.migration_lease import migration_lease
from collector.visits import VISIT_COLUMNS
from tests.clickhouse_http_server import ClickHouseHttpServer
from tests.conftest import CHROME_UA, fresh_database_name
from tests.reporting_data import sample_site_events, store_events
from tests.test_crash import Load, assert_stored_once, stop
from tests.test_crash import serve_env as crash_env
from tests.test_serve import free_port, start_serving

USER, PASSWORD = "collector", "p@ss word/1"  # a password the URL must quote


@pytest.fixture(scope="module")
def clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseHttpServer]:
    root = tmp_path_factory.mktemp("clickhouse-http")
    with ClickHouseHttpServer(root / "data", free_port(), root / "server.log", USER,
                              PASSWORD) as server:
        yield server


def endpoint(server: ClickHouseHttpServer) -> str:
    return f"http://127.0.0.1:{server.port}/"


def post(server: ClickHouseHttpServer, sql: str, **arguments: str) -> httpx.Response:
    """One request as a plain HTTP client sends it."""
    return httpx.post(endpoint(server), params=arguments, content=sql.encode(),
                      auth=(USER, PASSWORD), timeout=30)


# --- the interface, as clickhouse-connect and a plain HTTP client see it -------------------

def test_ping_version_and_the_driver_handshake(clickhouse: ClickHouseHttpServer) -> None:
    assert httpx.get(endpoint(clickhouse) + "ping").text == "Ok.\n"
    client = clickhouse_connect.get_client(host="127.0.0.1", port=clickhouse.port,
                                           username=USER, password=PASSWORD)
    try:
        # On connect the driver asked version() and timezone(), the settings, and probed
        # the Native protocol revision, which the fixture does not take (tests/README.md).
        assert client.server_version == client.command("SELECT version()")
        assert client.server_version == clickhouse.log.read_text().split()[2]
        assert str(client.server_tz) in ("UTC", "Etc/UTC")
        assert client.protocol_version == 0
        assert client.ping()
    finally:
        client.close()


def test_parameters_and_settings_hold_for_their_query_only(
        clickhouse: ClickHouseHttpServer) -> None:
    store = open_store(clickhouse.url(fresh_database_name("parameters")))
    try:
        moment = dt.datetime(2024, 3, 1, 12, 30, 15, 250000)
        long_list = [f"value {number}" for number in range(3000)]  # sent as a form
        assert store.rows(
            "SELECT {n:UInt32} + 1, {when:DateTime64(3)}, {missing:Nullable(String)}, "
            "length({items:Array(String)}), getSetting('max_block_size')",
            {"n": 41, "when": moment, "missing": None, "items": long_list},
            settings={"max_block_size": 77}) == [(42, moment, None, 3000, 77)]
        # The same session's next query runs with the default again, as on a server.
        assert store.rows("SELECT changed FROM system.settings "
                          "WHERE name = 'max_block_size'") == [(0,)]
    finally:
        store.close()


def test_answers_carry_the_headers_the_driver_reads(clickhouse: ClickHouseHttpServer) -> None:
    answered = post(clickhouse, "SELECT number FROM numbers(3) FORMAT JSONEachRow",
                    query_id="fixture-query-1")
    assert answered.status_code == 200
    assert [json.loads(line)["number"] for line in answered.text.splitlines()] == [0, 1, 2]
    assert answered.headers["X-ClickHouse-Query-Id"] == "fixture-query-1"
    assert answered.headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert json.loads(answered.headers["X-ClickHouse-Summary"])["read_rows"] == "3"
    # A statement without a result set names no format and has an empty body.
    created = post(clickhouse, f"CREATE DATABASE IF NOT EXISTS {fresh_database_name('h')}")
    assert (created.status_code, created.content) == (200, b"")
    assert "X-ClickHouse-Format" not in created.headers


def test_errors_answer_the_status_code_header_and_body_of_a_server(
        clickhouse: ClickHouseHttpServer) -> None:
    missing = post(clickhouse, "SELECT * FROM no_such_table")
    assert missing.status_code == 404
    assert missing.headers["X-ClickHouse-Exception-Code"] == "60"
    assert missing.text.startswith("Code: 60. DB::Exception: ")
    assert "(UNKNOWN_TABLE) (version " in missing.text
    assert post(clickhouse, "SELEC 1").status_code == 400
    refused = httpx.post(endpoint(clickhouse), content=b"SELECT 1", auth=(USER, "wrong"))
    assert (refused.status_code, refused.headers["X-ClickHouse-Exception-Code"]) == (403, "516")
    # The driver turns them into its errors, and the store into the collector's.
    store = open_store(clickhouse.url(fresh_database_name("errors")))
    try:
        with pytest.raises(StorageError, match="UNKNOWN_TABLE"):
            store.rows("SELECT * FROM no_such_table")
    finally:
        store.close()


def test_a_session_refuses_a_second_query_while_one_runs(
        clickhouse: ClickHouseHttpServer) -> None:
    first: list[httpx.Response] = []
    slow = threading.Thread(target=lambda: first.append(post(
        clickhouse, "SELECT sleepEachRow(0.5) FROM numbers(4)", session_id="busy")))
    slow.start()
    try:
        # Probe only once the first query runs (and so holds the session): a probe sent
        # before it would open the session itself and lock the first one out.
        deadline = time.monotonic() + 1.5
        while "sleepEachRow" not in post(
                clickhouse, "SELECT query FROM system.processes").text \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        second = post(clickhouse, "SELECT 1", session_id="busy")
    finally:
        slow.join()
    assert (second.status_code, second.headers["X-ClickHouse-Exception-Code"]) == (500, "373")
    assert "(SESSION_IS_LOCKED)" in second.text
    assert first[0].status_code == 200
    post(clickhouse, "CREATE TEMPORARY TABLE kept (n UInt8)", session_id="s1")
    assert post(clickhouse, "SELECT count() FROM kept", session_id="s1").text == "0\n"
    assert post(clickhouse, "SELECT count() FROM kept", session_id="s2").status_code == 404


# --- the store: the same rows through both engines -----------------------------------------

def test_rows_written_over_http_read_back_as_on_the_embedded_engine(
        clickhouse: ClickHouseHttpServer, store: Store) -> None:
    """The writer's JSONColumns inserts and the reports' Native reads, through the interface,
    give what the embedded engine gives; a replayed batch (its token) is stored once."""
    remote = open_store(clickhouse.url(fresh_database_name("parity")))
    try:
        migrate(remote)
        for target in (store, remote):
            tracked = store_events(target, sample_site_events())
            columns = list(zip(*tracked))
            for _ in range(2):  # the writer's replay after a lost answer
                target.insert_columns("events", EVENT_COLUMNS, columns, token="replayed")
        queries = [
            "SELECT * FROM events ORDER BY timestamp, name, pathname",
            "SELECT * FROM visits FINAL ORDER BY start_time, visit",
            "SELECT site, hour, sum(events), finalizeAggregation(uniqMergeState(visitors_s16)) "
            "FROM events_rollup_daily GROUP BY site, hour ORDER BY hour",
            "SELECT hour, sum(visits), sum(pageviews) FROM visits_rollup GROUP BY hour "
            "ORDER BY hour",
        ]
        for sql in queries:
            assert remote.query(sql) == store.query(sql), sql
        assert remote.rows("SELECT count() FROM events") == [(2 * len(tracked),)]
        streamed = [block for block in remote.stream_columns(
            "SELECT visit, pageviews FROM visits FINAL ORDER BY visit",
            settings={"max_block_size": 2})]
        assert [value for block in streamed for value in block[0]] == \
            [row[0] for row in remote.rows("SELECT visit FROM visits FINAL ORDER BY visit")]
        assert len(VISIT_COLUMNS) == len(remote.query("SELECT * FROM visits LIMIT 1")[0])
    finally:
        remote.close()


# --- collectors on the server --------------------------------------------------------------

class Collector:
    """A ``collector serve`` process on the fixture's store, with a data directory (and so a
    write-ahead log) of its own."""

    def __init__(self, root: Path, name: str, store_url: str) -> None:
        self.data_dir, self.log, self.port = root / name, root / f"{name}.log", free_port()
        self.env = {**crash_env(self.data_dir, self.port), "COLLECTOR_CLICKHOUSE_URL": store_url,
                    "COLLECTOR_FLUSH_INTERVAL": "0.2"}
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = start_serving(self.env, self.port, self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            stop(self.process, self.log)

    def command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """``collector ARGS`` as run on this collector's host: straight to the server."""
        return subprocess.run([sys.executable, "-m", "collector", *args],
                              env={**self.env, "COLLECTOR_LOG_LEVEL": "warning"},
                              capture_output=True, text=True, timeout=120)

    def pageview(self, site: str, path: str, client: str) -> httpx.Response:
        body = json.dumps({"n": "pageview", "u": f"https://{site}{path}", "d": site})
        return httpx.post(f"{self.url}/api/event", content=body, timeout=10, headers={
            "User-Agent": CHROME_UA, "Content-Type": "text/plain", "X-Forwarded-For": client})


def start_together(collectors: list[Collector]) -> None:
    """Start every collector at the same moment, as a deployment's replicas start."""
    starting = [threading.Thread(target=collector.start) for collector in collectors]
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()


def routed(collectors: list[Collector], client: str) -> Collector:
    """The routing deploy/README.md prescribes: a hash of the client address picks the
    collector (nginx ``hash $remote_addr consistent``, HAProxy ``balance source``)."""
    return collectors[zlib.crc32(client.encode()) % len(collectors)]


def wait_for(check: Any, timeout: float, what: str) -> float:
    """Seconds until ``check()`` is true; fails after ``timeout``."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.1)
    return time.monotonic() - started


@pytest.fixture(scope="module")
def shared(clickhouse: ClickHouseHttpServer,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Collector], Store]]:
    """Two collectors started at the same moment on one database of the fixture."""
    database = fresh_database_name("shared")
    root = tmp_path_factory.mktemp("collectors")
    collectors = [Collector(root, name, clickhouse.url(database)) for name in ("a", "b")]
    added = collectors[0].command("sites", "add", "one.test")
    assert added.returncode == 0, added.stderr
    start_together(collectors)
    reader = open_store(clickhouse.url(database))
    try:
        assert all(collector.process is not None for collector in collectors)
        yield collectors, reader
    finally:
        for collector in collectors:
            collector.stop()
        reader.close()


def test_two_collectors_share_salts_sites_and_visits(
        shared: tuple[list[Collector], Store]) -> None:
    collectors, reader = shared
    clients = [f"198.51.100.{number}" for number in range(1, 41)]
    accepted = 0
    for page in range(3):  # three pages per visitor, each routed by its address
        for number, client in enumerate(clients):
            answer = routed(collectors, client).pageview("one.test", f"/{number}/{page}", client)
            assert answer.status_code == 202 and "x-collector-dropped" not in answer.headers
            accepted += 1
    assert {routed(collectors, client) for client in clients} == set(collectors)

    def stored() -> tuple[int, int]:
        """Events stored, and pageviews the visits count: a batch inserts its events,
        then its visits, so the second can lag the first by an insert."""
        [(events,)] = reader.rows("SELECT count() FROM events WHERE site = 'one.test'")
        [(pageviews,)] = reader.rows("SELECT sum(sign * pageviews) FROM visits "
                                     "WHERE site = 'one.test'")
        return int(events), int(pageviews)

    wait_for(lambda: stored() == (accepted, accepted), 30, "every accepted event stored")
    # Each accepted event once, one visit per visitor with its three pages.
    assert reader.rows("SELECT pathname, count() FROM events WHERE site = 'one.test' "
                       "GROUP BY pathname HAVING count() > 1") == []
    assert reader.rows("SELECT sum(sign), sum(sign * pageviews) FROM visits "
                       "WHERE site = 'one.test'") == [(len(clients), accepted)]
    assert reader.rows("SELECT pageviews, count() FROM visits FINAL WHERE site = 'one.test' "
                       "GROUP BY pageviews") == [(3, len(clients))]
    # Both collectors hashed with the first writer's salt of the day.
    today = dt.datetime.now(dt.UTC).date()
    [(salt_hex,)] = reader.rows("SELECT salt FROM salts WHERE day = {day:Date} "
                                "ORDER BY created_ms, salt LIMIT 1", {"day": today})
    salt = bytes.fromhex(salt_hex)
    visitors = dict(reader.rows("SELECT extract(pathname, '^/(\\\\d+)/'), any(visitor) "
                                "FROM events WHERE site = 'one.test' GROUP BY 1"))
    assert visitors == {str(number): visitor_hash(salt, "one.test", client, CHROME_UA)
                        for number, client in enumerate(clients)}


def test_a_site_added_on_one_host_reaches_every_collector_within_the_refresh(
        shared: tuple[list[Collector], Store]) -> None:
    collectors, reader = shared
    client = "198.51.100.200"
    before = [collector.pageview("two.test", "/early", client) for collector in collectors]
    assert [answer.headers.get("x-collector-dropped") for answer in before] == \
        ["unknown-site"] * 2
    added = collectors[0].command("sites", "add", "two.test")
    assert added.returncode == 0, added.stderr
    for number, collector in enumerate(collectors):
        def accepted(collector: Collector = collector, number: int = number) -> bool:
            answer = collector.pageview("two.test", f"/late/{number}", client)
            return "x-collector-dropped" not in answer.headers

        waited = wait_for(accepted, SITE_REFRESH_SECONDS + 5, f"collector {number} accepting")
        assert waited <= SITE_REFRESH_SECONDS + 5


def test_reports_and_commands_read_the_shared_store(
        shared: tuple[list[Collector], Store]) -> None:
    collectors, reader = shared
    created = collectors[1].command("keys", "create", "--site", "one.test")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    # Either collector answers for the store (the key was made on the other's host).
    answers = [httpx.post(f"{collector.url}/api/v2/query", timeout=30,
                          headers={"Authorization": f"Bearer {key}"},
                          json={"site_id": "one.test", "date_range": "day",
                                "metrics": ["visitors", "visits", "pageviews"]}).json()
               for collector in collectors]
    assert answers[0]["results"] == answers[1]["results"]
    assert answers[0]["results"][0]["metrics"] == [40, 40, 120]
    listed = collectors[0].command("sites", "list", "--json")
    assert {site["domain"] for site in json.loads(listed.stdout)["sites"]} >= {"one.test"}


def test_collectors_started_together_on_a_fresh_database_migrate_it_once(
        clickhouse: ClickHouseHttpServer, tmp_path: Path) -> None:
    """Replicas of a deployment start at once; without the migration lease two of three
    failed on a table the first had just created (TABLE_ALREADY_EXISTS)."""
    url = clickhouse.url(fresh_database_name("fresh"))
    collectors = [Collector(tmp_path, name, url) for name in ("a", "b", "c")]
    start_together(collectors)
    try:
        assert all(collector.process is not None for collector in collectors), \
            [collector.log.read_text()[-2000:] for collector in collectors]
        reader = open_store(url)
        try:
            counts = reader.rows("SELECT version, count() FROM schema_migrations "
                                 "GROUP BY version ORDER BY version")
            assert counts and {count for _, count in counts} == {1}
            assert reader.rows(f"SELECT count() FROM {LEASE_TABLE} FINAL "
                               "WHERE expires_ms > toUnixTimestamp64Milli(now64(3))") == [(0,)]
        finally:
            reader.close()
    finally:
        for collector in collectors:
            collector.stop()
    assert sum("another collector is migrating" in collector.log.read_text()
               for collector in collectors) >= 1


def test_the_migration_lease_has_one_holder_and_lapses_when_it_dies(
        clickhouse: ClickHouseHttpServer) -> None:
    url = clickhouse.url(fresh_database_name("lease"))
    stores = [open_store(url) for _ in range(3)]
    held: list[tuple[float, float]] = []

    def migrate_alone(store: Store) -> None:
        with migration_lease(store, SINGLE_NODE, lease=3.0, settle=0.2):
            entered = time.monotonic()
            time.sleep(0.4)
            held.append((entered, time.monotonic()))

    try:
        racing = [threading.Thread(target=migrate_alone, args=(store,)) for store in stores]
        for thread in racing:
            thread.start()
        for thread in racing:
            thread.join()
        assert len(held) == 3
        ordered = sorted(held)
        assert all(left[1] <= right[0] for left, right in zip(ordered, ordered[1:]))
        # A holder killed while migrating renews no more: its lease lapses, then the next goes.
        stores[0].command(f"INSERT INTO {LEASE_TABLE} SELECT 'killed', "
                          "toUnixTimestamp64Milli(now64(3)) - 50000, "
                          "toUnixTimestamp64Milli(now64(3)) + 1500, 1")
        started = time.monotonic()
        with migration_lease(stores[1], SINGLE_NODE, settle=0.2):
            waited = time.monotonic() - started
        assert 1.2 < waited < 10
    finally:
        for store in stores:
            store.close()


# --- the network goes -----------------------------------------------------------------------

def test_inserts_stored_but_unanswered_are_retried_and_stored_once(
        clickhouse: ClickHouseHttpServer, tmp_path: Path) -> None:
    collector = Collector(tmp_path, "collector", clickhouse.url(fresh_database_name("lost")))
    collector.start()
    try:
        clickhouse.lose_insert_answers(3)
        paths = [f"/lost/{number}" for number in range(20)]
        for number, path in enumerate(paths):
            assert collector.pageview("lost.test", path, f"192.0.2.{number}").status_code == 202
        reader = open_store(collector.env["COLLECTOR_CLICKHOUSE_URL"])
        try:
            wait_for(lambda: reader.rows("SELECT count() FROM visits")[0][0] > 0, 30,
                     "the batch written")
            collector.stop()
            assert reader.rows("SELECT pathname FROM events ORDER BY pathname") == \
                [(path,) for path in sorted(paths)]
            assert reader.rows("SELECT sum(sign), sum(sign * events) FROM visits") == [(20, 20)]
            assert reader.rows("SELECT sum(events) FROM events_rollup_daily") == [(20,)]
        finally:
            reader.close()
    finally:
        collector.stop()
    # The driver (urllib3 resends a request whose connection dropped) and the writer
    # retried: each retry carried the batch's token.
    assert "insert into events failed: ClickHouse is unreachable" in collector.log.read_text()


def test_the_store_server_killed_and_restarted_under_load_loses_and_doubles_nothing(
        tmp_path: Path) -> None:
    server = ClickHouseHttpServer(tmp_path / "clickhouse", free_port(), tmp_path / "server.log")
    server.start()
    collector = Collector(tmp_path, "collector", server.url("outage"))
    try:
        collector.start()
        reader = open_store(server.url("outage"))
        created = collector.command("keys", "create", "--site", "crash.test")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        with Load(collector.url) as load:
            load.wait_for(500)
            server.kill()  # every connection to the store drops at once
            load.wait_for(len(load.accepted) + 500)  # accepted while the store is away
            # A report cannot be answered meanwhile: 503 to retry, no engine text.
            report = httpx.post(f"{collector.url}/api/v2/query", timeout=30,
                                headers={"Authorization": f"Bearer {key}"},
                                json={"site_id": "crash.test", "date_range": "day",
                                      "metrics": ["visitors"]})
            assert (report.status_code, report.headers["retry-after"]) == (503, "5")
            assert report.json() == {"error": "the store is unavailable; retry shortly"}
            secret = "5a17" * 16
            with pytest.raises(StorageUnavailable) as unreachable:
                reader.command("INSERT INTO salts (day, salt, created_ms) VALUES "
                               "(today(), {salt:String}, 0)", {"salt": secret})
            server.start()
            load.wait_for(len(load.accepted) + 500)
        collector.stop()  # writes out what is buffered, on the store that came back
        found = _stored(reader)
        reader.close()
    finally:
        collector.stop()
        server.stop()
    assert_stored_once(found, load)
    assert set(found["paths"]) == set(load.accepted)  # the collector never went away
    log = collector.log.read_text()
    assert re.search(r"insert into \w+ failed: ClickHouse is unreachable", log)
    # What the driver says of an unreachable server names no parameter of the query.
    assert "Connection refused" in str(unreachable.value)
    assert secret not in str(unreachable.value) and "param_" not in log


def _stored(reader: Store) -> dict[str, Any]:
    def one(sql: str) -> Any:
        return reader.rows(sql)[0][0]

    return {"paths": dict(reader.rows("SELECT pathname, count() FROM events GROUP BY 1")),
            "visit_events": one("SELECT sum(sign * events) FROM visits"),
            "bad_versions": one("SELECT count() FROM (SELECT sum(sign) AS n FROM visits "
                                "GROUP BY visit, version) WHERE n NOT IN (0, 1)"),
            "bad_visits": one("SELECT count() FROM (SELECT sum(sign) AS n FROM visits "
                              "GROUP BY visit) WHERE n != 1")}


"""Health, readiness, /metrics and the logs: what an operator sees, and what nobody else does."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from collector.app import create_app
from collector.logs import configure_logging
from collector.reports.auth import create_key
from collector.storage import Store, migrate, open_store
from collector.views import health as health_view
from tests.conftest import CHROME_UA, app_settings, fresh_database_name

INTERNET = ("203.0.113.9", 50000)
LOOPBACK = ("127.0.0.1", 50000)
TOKEN = "metrics-token-0123456789"
EVENT = {"n": "pageview", "u": "https://obs.test/pricing?email=a@b.example", "d": "obs.test"}
HEADERS = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}


@contextmanager
def serving(store: Store, engine_url: str, data_dir: Path, client: tuple[str, int] = INTERNET,
            **overrides: Any) -> Iterator[TestClient]:
    """A started collector on ``store``, with a data directory (and write-ahead log) of its own."""
    app = create_app(app_settings(engine_url, data_dir=data_dir, **overrides), store)
    with TestClient(app, client=client) as running:
        yield running


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "collector-data"


@pytest.fixture
def outage_store(engine_url: str) -> Store:
    """A store on a database of its own, which the test can take away and bring back."""
    opened = open_store(engine_url, fresh_database_name("observability_outage"))
    migrate(opened)
    return opened


def metrics(client: TestClient, **headers: str) -> dict[str, float]:
    """Every sample of /metrics as {"name{label=value}": value}."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f"{key}={value}" for key, value in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def test_healthz_answers_without_a_store(engine_url: str, store: Store, data_dir: Path) -> None:
    app = create_app(app_settings(engine_url, data_dir=data_dir), store)
    client = TestClient(app)  # not started: no store, no writer, no pipeline
    alive = client.get("/healthz")
    assert (alive.status_code, alive.text) == (200, "ok")
    assert client.get("/readyz").json() == {"status": "unavailable", "reason": "starting"}


def test_readyz_follows_the_store_and_never_shows_its_errors(
        engine_url: str, outage_store: Store, data_dir: Path) -> None:
    with serving(outage_store, engine_url, data_dir) as client:
        assert client.get("/readyz").json() == {"status": "ready"}
        outage_store.command(f"DROP DATABASE {outage_store.database}")
        down = client.get("/readyz")
        assert down.status_code == 503
        assert down.json() == {"status": "unavailable", "reason": "the store does not answer"}
        outage_store.command(f"CREATE DATABASE {outage_store.database}")
        migrate(outage_store)
        assert client.get("/readyz").status_code == 200


def test_readyz_gives_up_on_a_store_that_hangs(engine_url: str, store: Store, data_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(health_view, "READY_TIMEOUT_SECONDS", 0.2)
    with serving(store, engine_url, data_dir) as client:
        probe_store = client.app.state.probe_store  # type: ignore[attr-defined]
        with probe_store._client():  # its one connection busy: it hangs, as far as we can tell
            for _ in range(3):  # polls while one probe is stuck do not start more probes
                assert client.get("/readyz").json()["reason"] == "the store does not answer"
        assert client.get("/readyz").status_code == 200


def test_readyz_is_503_while_the_write_buffer_is_nearly_full(engine_url: str, store: Store,
                                                      data_dir: Path) -> None:
    with serving(store, engine_url, data_dir, buffer_max_rows=20, flush_interval=60.0) as client:
        writer = client.app.state.writer  # type: ignore[attr-defined]
        while writer.buffered_rows < 16:
            assert client.post("/api/event", json=EVENT, headers=HEADERS).status_code == 202
        assert client.get("/readyz").status_code == 200
        while writer.buffered_rows < 18:
            assert client.post("/api/event", json=EVENT, headers=HEADERS).status_code == 202
        assert client.get("/readyz").json() == {"status": "unavailable",
                                                "reason": "the write buffer is nearly full"}


def test_api_health_shows_internals_only_to_keys_and_the_operator(
        engine_url: str, store: Store, data_dir: Path) -> None:
    key = create_key(store, "obs.test")
    share = create_key(store, "obs.test", kind="share")
    with serving(store, engine_url, data_dir) as client:
        assert client.post("/api/event", json=EVENT, headers=HEADERS).status_code == 202
        client.app.state.writer.flush()  # type: ignore[attr-defined]
        assert client.get("/api/health").json() == {"status": "ok"}
        detailed = client.get("/api/health", headers={"Authorization": f"Bearer {key}"}).json()
        assert detailed["written_rows"]["events"] >= 1
        assert detailed["last_write_error"] is None
        assert set(detailed) >= {"buffered_rows", "log_bytes", "dropped", "sites", "store"}
        assert client.get("/api/health", headers={
            "Authorization": f"Bearer {share}"}).status_code == 403
        assert client.get("/api/health", headers={
            "Authorization": "Bearer ck_nothing_here"}).status_code == 401
    with serving(store, engine_url, data_dir, client=LOOPBACK) as local:
        assert "written_rows" in local.get("/api/health").json()
        relayed = local.get("/api/health", headers={"X-Forwarded-For": "198.51.100.7"})
        assert relayed.json() == {"status": "ok"}  # a proxy on this host relays the internet


def test_the_last_write_error_is_shown_only_while_writes_fail(
        engine_url: str, outage_store: Store, data_dir: Path) -> None:
    with serving(outage_store, engine_url, data_dir, client=LOOPBACK) as client:
        writer = client.app.state.writer  # type: ignore[attr-defined]
        outage_store.command(f"DROP DATABASE {outage_store.database}")
        client.post("/api/event", json=EVENT, headers=HEADERS)
        with pytest.raises(Exception, match="does not exist"):
            writer.flush()
        failing = client.get("/api/health").json()
        assert failing["status"] == "degraded"
        assert "does not exist" in failing["last_write_error"]
        assert metrics(client)["collector_store_failing"] == 1
        client.post("/api/event", json=EVENT, headers=HEADERS)  # a second batch, which
        with pytest.raises(Exception, match="does not exist"):  # waits in the log only
            writer.flush()
        outage_store.command(f"CREATE DATABASE {outage_store.database}")
        migrate(outage_store)
        writer.flush()
        recovered = client.get("/api/health").json()
        assert (recovered["status"], recovered["last_write_error"]) == ("ok", None)
        seen = metrics(client)
    assert seen["collector_insert_errors_total{table=events}"] >= 1
    assert seen["collector_replayed_batches_total"] == 1  # read back from the log
    assert seen["collector_store_failing"] == 0
    assert seen["collector_rows_written_total{table=events}"] == 2


def test_metrics_need_this_host_or_the_token(engine_url: str, store: Store,
                                             data_dir: Path) -> None:
    with serving(store, engine_url, data_dir) as remote:
        assert remote.get("/metrics").status_code == 403
    with serving(store, engine_url, data_dir, client=LOOPBACK) as local:
        assert local.get("/metrics").status_code == 200
        assert local.get("/metrics", headers={"X-Real-IP": "198.51.100.7"}).status_code == 403
    with serving(store, engine_url, data_dir, metrics_token=TOKEN) as remote:
        assert remote.get("/metrics").status_code == 401
        assert remote.get("/metrics", headers={
            "Authorization": "Bearer metrics-token-0123456788"}).status_code == 401
        assert "collector_buffer_rows" in metrics(remote, Authorization=f"Bearer {TOKEN}")
        detailed = remote.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"})
        assert "written_rows" in detailed.json()


def test_metrics_count_what_ingest_and_reports_did(engine_url: str, store: Store,
                                                   data_dir: Path) -> None:
    key = create_key(store, "obs.test")
    with serving(store, engine_url, data_dir, client=LOOPBACK, body_limit=4096) as client:
        for _ in range(3):
            assert client.post("/api/event", json=EVENT, headers=HEADERS).status_code == 202
        client.post("/api/event", json=EVENT, headers={"User-Agent": "curl/8.0"})  # a bot
        client.post("/api/event", content=b"{", headers=HEADERS)
        client.post("/api/event", content=b"x" * 5000, headers=HEADERS)
        client.app.state.writer.flush()  # type: ignore[attr-defined]
        query = {"site_id": "obs.test", "date_range": "7d", "metrics": ["visitors"]}
        assert client.post("/api/v2/query", json=query,
                           headers={"Authorization": f"Bearer {key}"}).status_code == 200
        seen = metrics(client)
    assert seen["collector_rows_accepted_total{table=events}"] == 3
    assert seen["collector_rows_written_total{table=events}"] == 3
    assert seen["collector_events_dropped_total{reason=bot}"] == 1
    assert seen["collector_ingest_rejected_total{status=400}"] == 1
    assert seen["collector_ingest_rejected_total{status=413}"] == 1
    assert seen["collector_buffer_rows"] == 0
    assert seen["collector_flush_seconds_count{table=events}"] >= 1
    assert seen["collector_report_query_seconds_count"] == 1
    assert seen["collector_rate_limited_total{limit=client}"] == 0
    assert seen["process_resident_memory_bytes"] > 0
    assert "collector_log_bytes" in seen


def test_two_apps_in_one_process_keep_their_own_metrics(engine_url: str, store: Store,
                                                        tmp_path: Path) -> None:
    with serving(store, engine_url, tmp_path / "one", client=LOOPBACK) as one, \
            serving(store, engine_url, tmp_path / "two", client=LOOPBACK) as two:
        one.post("/api/event", json=EVENT, headers=HEADERS)
        assert metrics(one)["collector_rows_accepted_total{table=events}"] == 1
        assert "collector_rows_accepted_total{table=events}" not in metrics(two)


def test_no_redirect_is_built_from_the_host_header(engine_url: str, store: Store,
                                                   data_dir: Path) -> None:
    with serving(store, engine_url, data_dir) as client:
        answer = client.get("/js/script.js/", headers={"Host": "evil.example"},
                            follow_redirects=False)
        assert answer.status_code == 404
        assert "location" not in answer.headers


@pytest.fixture
def log_lines(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Configure logging for a test; the lines written to stderr so far, on each call."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    # The test client logs each URL it requests, query included: not the collector's lines.
    clients = [logging.getLogger(name) for name in ("httpx", "httpx2")]
    levels = [client.level for client in clients]

    def configure(log_format: str) -> None:
        configure_logging("info", log_format)  # its handler writes to the captured stderr
        for client in clients:
            client.setLevel(logging.WARNING)

    def lines() -> list[str]:
        return [line for line in capsys.readouterr().err.splitlines() if line.strip()]

    yield configure, lines
    root.handlers[:], level = saved
    root.setLevel(level)
    for client, client_level in zip(clients, levels, strict=True):
        client.setLevel(client_level)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_carry_no_address_agent_or_query(engine_url: str, store: Store,
                                                   data_dir: Path, log_format: str,
                                                   log_lines: Any) -> None:
    configure, lines = log_lines
    configure(log_format)
    secret_headers = {**HEADERS, "X-Forwarded-For": "198.51.100.77", "Referer":
                      "https://obs.test/account?token=s3cr3t"}
    with serving(store, engine_url, data_dir, access_log=True) as client:
        lines()  # startup
        client.post("/api/event?session=s3cr3t", json=EVENT, headers=secret_headers)
        client.get("/pixel.gif?d=obs.test&u=/account%3Ftoken%3Ds3cr3t", headers=secret_headers)
        client.get("/share/cs_abc_s3cr3t")
    logged = lines()  # and at shutdown, the events' line (collector.logs.EventLog)
    text = "\n".join(logged)
    for secret in ("203.0.113.9", "198.51.100.77", "Chrome/124", "s3cr3t", "email", "?"):
        assert secret not in text
    if log_format == "json":
        access = [json.loads(line) for line in logged if '"collector.access"' in line]
        assert [(entry["method"], entry["path"], entry.get("status")) for entry in access] == [
            ("GET", "/pixel.gif", 200), ("GET", "/share/<token>", 404),
            ("POST", "/api/event", None)]
        assert all(entry["level"] == "info" for entry in access)
        assert all(entry["duration_ms"] >= 0 for entry in access[:2])
        assert (access[2]["answered"], access[2]["by_status"]) == (1, {"202": 1})
    else:
        assert '"POST /api/event" 1 answered in ' in text and "(202: 1)" in text
        assert '"GET /share/<token>" 404' in text



def test_events_are_one_access_line_per_interval_and_one_each_at_debug(
        engine_url: str, store: Store, data_dir: Path, log_lines: Any) -> None:
    configure, lines = log_lines
    configure("text")
    events_log = logging.getLogger("collector.access")
    with serving(store, engine_url, data_dir, access_log=True) as client:
        lines()  # startup
        for _ in range(3):
            assert client.post("/api/event", json=EVENT, headers=HEADERS).status_code == 202
        assert client.post("/api/event", json={"n": "pageview"}, headers=HEADERS) \
            .status_code == 400
        assert not [line for line in lines() if "/api/event" in line]  # not yet: summed
        client.app.state.event_log.flush()  # type: ignore[attr-defined]
        [summary] = [line for line in lines() if "/api/event" in line]
        assert '"POST /api/event" 4 answered in ' in summary and "(202: 3, 400: 1)" in summary
        client.app.state.event_log.flush()  # type: ignore[attr-defined]
        assert not lines()  # nothing answered since: no line
        events_log.setLevel(logging.DEBUG)
        try:
            client.post("/api/event", json=EVENT, headers=HEADERS)
        finally:
            events_log.setLevel(logging.NOTSET)
        assert [line for line in lines() if '"POST /api/event" 202 ' in line]

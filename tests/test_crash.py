"""Crashes and outages under load: every event answered 202 is stored, exactly once.

Real ``collector serve`` processes on a data directory of their own are killed in
the middle of a load (SIGKILL, SIGTERM) and started again on the same directory;
the store outage runs the collector in this process, where the test can take the
tables away from under the writer. The load sends each event to a path of its own,
so the paths answered 202 can be compared with the paths stored.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.app import create_app
from collector.storage import Store, migrate, open_store
from collector.wal import SUFFIX
from tests.browser_support import BackgroundServer
from tests.conftest import CHROME_UA, app_settings, fresh_database_name
from tests.test_serve import collector_env, free_port, start_serving

SITE = "crash.test"
CONNECTIONS = 16
VISITORS = 40  # client addresses, forwarded by the trusted loopback proxy


class Load:
    """POSTs of pageviews from a thread, each to a path of its own, until told to stop or
    until the server goes away; remembers which paths were answered how."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.sent: list[str] = []
        self.accepted: list[str] = []
        self.statuses: dict[int, int] = {}
        self._numbers = itertools.count()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def wait_for(self, accepted: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < accepted:
            assert time.monotonic() < deadline, f"only {len(self.accepted)} accepted"
            assert self._thread.is_alive(), self.statuses
            time.sleep(0.01)

    def wait_until_stopped(self, timeout: float = 60.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive()

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=CONNECTIONS)
        async with httpx.AsyncClient(base_url=self.base_url, limits=limits,
                                     timeout=30) as client:
            await asyncio.gather(*(self._send(client) for _ in range(CONNECTIONS)))

    async def _send(self, client: httpx.AsyncClient) -> None:
        while not self._stop.is_set():
            number = next(self._numbers)
            path = f"/page/{number}"
            body = json.dumps({"n": "pageview", "u": f"https://{SITE}{path}", "d": SITE})
            headers = {"User-Agent": CHROME_UA, "Content-Type": "text/plain",
                       "X-Forwarded-For": f"198.18.0.{number % VISITORS}"}
            self.sent.append(path)
            try:
                response = await client.post("/api/event", content=body, headers=headers)
            except httpx.TransportError:
                return  # the server is gone: whether this one was stored is unknown
            self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
            if response.status_code == 202:
                assert "x-collector-dropped" not in response.headers
                self.accepted.append(path)


def serve_env(data_dir: Path, port: int) -> dict[str, str]:
    # The default flush interval: at a kill, about a second of events is not written yet.
    return {**collector_env(data_dir, port), "COLLECTOR_FLUSH_INTERVAL": "1.0",
            "COLLECTOR_TRUSTED_PROXIES": "127.0.0.1/32", "COLLECTOR_RATE_LIMIT_CLIENT": "0",
            "COLLECTOR_ACCESS_LOG": "false"}


class Collectors:
    """``collector serve`` processes on one data directory and port, one after the other."""

    def __init__(self, tmp_path: Path) -> None:
        self.data_dir, self.log, self.port = tmp_path / "data", tmp_path / "serve.log", free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        self.started.append(start_serving(serve_env(self.data_dir, self.port), self.port,
                                          self.log))
        return self.started[-1]

    def segments(self) -> list[Path]:
        return list((self.data_dir / "wal").glob(f"*{SUFFIX}"))


@pytest.fixture()
def collectors(tmp_path: Path) -> Iterator[Collectors]:
    made = Collectors(tmp_path)
    yield made
    for process in made.started:  # those a failed test left running
        if process.poll() is None:
            process.kill()
            process.wait(timeout=60)


def stop(process: subprocess.Popen[bytes], log: Path) -> None:
    process.send_signal(signal.SIGTERM)
    # uvicorn re-raises the signal after a clean shutdown, hence -SIGTERM.
    assert process.wait(timeout=60) in (0, -signal.SIGTERM), log.read_text()


def stored(data_dir: Path) -> dict[str, Any]:
    """Stored paths with their counts, and the visits' consistency, read by a new process."""
    code = """if True:
        import json
        from collector.settings import Settings
        from collector.storage import open_store
        store = open_store(Settings.from_env().store_url)
        def one(sql):
            return store.rows(sql)[0][0]
        print(json.dumps({
            "paths": dict(store.rows("SELECT pathname, count() FROM events GROUP BY 1")),
            "visit_events": one("SELECT sum(sign * events) FROM visits"),
            "bad_versions": one("SELECT count() FROM (SELECT sum(sign) AS n FROM visits "
                                "GROUP BY visit, version) WHERE n NOT IN (0, 1)"),
            "bad_visits": one("SELECT count() FROM (SELECT sum(sign) AS n FROM visits "
                              "GROUP BY visit) WHERE n != 1"),
        }))
    """
    result = subprocess.run([sys.executable, "-c", code], env=serve_env(data_dir, free_port()),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def assert_stored_once(found: dict[str, Any], load: Load) -> None:
    paths: dict[str, int] = found["paths"]
    assert load.accepted and set(load.accepted) <= set(paths), \
        f"{len(set(load.accepted) - set(paths))} accepted events are missing"
    assert [path for path, times in paths.items() if times > 1] == []
    # Requests cut off by the kill may or may not have been stored; nothing else can be.
    assert set(paths) <= set(load.sent)
    assert found["visit_events"] == sum(paths.values())
    assert (found["bad_versions"], found["bad_visits"]) == (0, 0)


def test_sigkill_under_load_then_restart_stores_every_202_once(collectors: Collectors) -> None:
    process = collectors.start()
    with Load(collectors.url) as load:
        load.wait_for(1500)
        process.kill()
        load.wait_until_stopped()
    assert process.wait(timeout=60) == -signal.SIGKILL
    assert collectors.segments()  # the kill left rows unwritten
    stop(collectors.start(), collectors.log)
    assert_stored_once(stored(collectors.data_dir), load)
    assert "of the previous run: replaying them" in collectors.log.read_text()
    assert collectors.segments() == []


def test_sigterm_under_load_stores_every_202_once(collectors: Collectors) -> None:
    process = collectors.start()
    with Load(collectors.url) as load:
        load.wait_for(1500)
        stop(process, collectors.log)
        load.wait_until_stopped()
    assert collectors.segments() == []  # all written before the exit
    assert_stored_once(stored(collectors.data_dir), load)


@pytest.fixture()
def outage_store(engine_url: str) -> Store:
    opened = open_store(engine_url, fresh_database_name("crash_outage"))
    migrate(opened)
    return opened


def test_a_store_outage_under_load_keeps_the_buffer_bounded_and_loses_nothing(
        outage_store: Store, engine_url: str, tmp_path: Path) -> None:
    cap = 3000
    settings = app_settings(engine_url, data_dir=tmp_path / "data", buffer_max_rows=cap,
                            flush_interval=0.1, flush_rows=500,
                            trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),))
    app = create_app(settings, outage_store)
    peak = {"rows": 0, "log_bytes": 0}
    with BackgroundServer(app) as server, Load(server.url) as load:
        writer = app.state.writer

        def watch(seconds: float, until: Callable[[], bool] = lambda: False) -> None:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline and not until():
                peak["rows"] = max(peak["rows"], writer.buffered_rows)
                peak["log_bytes"] = max(peak["log_bytes"], writer.stats.log_bytes)
                time.sleep(0.005)

        load.wait_for(300)
        outage_store.command("RENAME TABLE events TO events_away, visits TO visits_away")
        try:
            watch(60, until=lambda: load.statuses.get(503, 0) > 0)
            assert load.statuses.get(503, 0) > 0  # the cap was reached...
            assert writer.spooled_batches > 1  # ...with batches waiting in the log
        finally:
            outage_store.command("RENAME TABLE events_away TO events, visits_away TO visits")
        accepted_in_outage = len(load.accepted)
        # The writer retries within its back-off (at most 5 s), then catches up.
        watch(30, until=lambda: len(load.accepted) > accepted_in_outage + 300)
        assert len(load.accepted) > accepted_in_outage + 300  # accepting again
    assert set(load.statuses) == {202, 503}, load.statuses
    assert 0 < peak["rows"] <= cap
    assert peak["log_bytes"] > 0
    assert list((tmp_path / "data").rglob("*.tmp")) == []
    paths = dict(outage_store.rows(
        "SELECT pathname, count() FROM events WHERE site = {site:String} GROUP BY 1",
        {"site": SITE}))
    [(visit_events, bad_versions, bad_visits)] = outage_store.rows(
        "SELECT (SELECT sum(sign * events) FROM visits), "
        "(SELECT count() FROM (SELECT sum(sign) AS n FROM visits GROUP BY visit, version) "
        " WHERE n NOT IN (0, 1)), "
        "(SELECT count() FROM (SELECT sum(sign) AS n FROM visits GROUP BY visit) WHERE n != 1)")
    assert_stored_once({"paths": paths, "visit_events": visit_events,
                        "bad_versions": bad_versions, "bad_visits": bad_visits}, load)
    assert set(paths) == set(load.accepted)  # the server never went away

"""Shared fixtures: one embedded ClickHouse engine per test session, one database per module.

The embedded engine can open a single data directory per process, so tests
isolate by database inside it, never by directory.
"""

from __future__ import annotations

import functools
import http.server
import re
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.reports.sampling import Sampler, SamplingPolicy
from collector.settings import Settings
from collector.storage import Store, migrate, open_store

# The browser tests' fixtures (`collector` on a real port, `browser`).
pytest_plugins = ["tests.browser_support"]

# The large corpora (MaxMind's test databases, user-agent and referrer-spam lists) live
# beside the repository, not in it: a clone from the public home has no ../shared.
TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"


def shared_testdata(corpus: str, *parts: str) -> Path:
    """A path inside the optional corpus ``../shared/testdata/<corpus>``.

    Skips the calling test when the corpus folder is absent, naming it. A missing file
    inside a present folder is not skipped: the test then fails, as a broken corpus should.
    """
    folder = TESTDATA / corpus
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (a clone from the public home has none)")
    return folder.joinpath(*parts)


def shared_testdata_lines(corpus: str, name: str) -> list[str]:
    """The non-empty lines of one corpus file; skips like ``shared_testdata``."""
    text = shared_testdata(corpus, name).read_text(encoding="utf-8")
    return [line for line in text.splitlines() if line.strip()]


@pytest.fixture(scope="session")
def engine_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data directory of the session's embedded ClickHouse engine."""
    return tmp_path_factory.mktemp("clickhouse")


@pytest.fixture(scope="session")
def engine_url(engine_dir: Path) -> str:
    return f"chdb://{engine_dir}"


def fresh_database_name(label: str) -> str:
    fresh_database_name.counter += 1  # type: ignore[attr-defined]
    cleaned = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")[-40:]
    return f"t{fresh_database_name.counter}_{cleaned}"  # type: ignore[attr-defined]


fresh_database_name.counter = 0  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def store(engine_url: str, request: pytest.FixtureRequest) -> Iterator[Store]:
    """A migrated store on a database of its own for this test module."""
    opened = open_store(engine_url, fresh_database_name(request.module.__name__))
    migrate(opened)
    yield opened


@pytest.fixture
def rollups_in_use() -> Sampler:
    """A sampler counting visitors from the 1/16 sample whatever the range: the rollups answer.

    Rollups hold only visitor samples, so small test ranges would otherwise be
    counted exactly from the raw tables. Hand it to ``run_report(sampler=...)``, or
    its ``policy`` to ``create_app``.
    """
    return Sampler(SamplingPolicy(exact_visitors_up_to_visits=0,
                                  sixteenth_up_to_visits=10 ** 12))


def app_settings(engine_url: str, **overrides: object) -> Settings:
    """Settings for a test app: the session engine, no access log, a fast writer, and no
    rate limit per client (tests send bursts from one address; test_ratelimit sets one)."""
    data_dir = Path(engine_url[len("chdb://"):]).parent / "collector-data"
    values: dict[str, object] = {"clickhouse_url": engine_url, "access_log": False,
                                 "flush_interval": 0.05, "data_dir": data_dir,
                                 "rate_limit_client": 0.0}
    # A write-ahead log per app: apps of one test run side by side, and a log belongs to
    # one of them (unless the test chose a data directory, which holds its log).
    if "data_dir" not in overrides:
        values["wal_dir"] = Path(tempfile.mkdtemp(prefix="wal-", dir=data_dir.parent))
    values.update(overrides)
    return Settings.from_env({}, **values)


@contextmanager
def running_app(store: Store, engine_url: str, clock: Callable[[], float] | None = None,
                **overrides: object) -> Iterator[TestClient]:
    """A TestClient on a collector sharing ``store``, started and stopped around the block."""
    from collector.app import create_app  # imported late: helpers' modules may be absent

    app = create_app(app_settings(engine_url, **overrides), store,
                     **({"clock": clock} if clock else {}))
    with TestClient(app, client=("203.0.113.9", 50000)) as client:
        yield client


def flush(client: TestClient) -> None:
    client.app.state.writer.flush()  # type: ignore[attr-defined]


CHROME_UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
             "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def serving_directory(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (never the real internet); yield its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An empty directory served on loopback, and its base URL, for download tests."""
    root = tmp_path / "served"
    root.mkdir()
    with serving_directory(root) as base_url:
        yield root, base_url

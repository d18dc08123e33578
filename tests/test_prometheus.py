"""Debian's Prometheus scrapes a collector on a real port; one metric is read back from it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.app import create_app
from collector.storage import Store
from tests.browser_support import BackgroundServer, wait_until
from tests.conftest import CHROME_UA, app_settings

PROMETHEUS = shutil.which("prometheus")
TOKEN = "scrape-token-0123456789abcdef"
CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: collector
    authorization:
      type: Bearer
      credentials: {token}
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="Debian's prometheus is absent (apt-get install prometheus)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def collector_url(engine_url: str, store: Store, tmp_path: Path) -> Iterator[str]:
    settings = app_settings(engine_url, data_dir=tmp_path / "collector-data",
                            metrics_token=TOKEN)
    with BackgroundServer(create_app(settings, store)) as server:
        yield server.url


@pytest.fixture
def prometheus(collector_url: str, tmp_path: Path) -> Iterator[str]:
    """Prometheus scraping the collector every second; yields its HTTP API's base URL."""
    assert PROMETHEUS is not None
    config = tmp_path / "prometheus.yml"
    config.write_text(CONFIG.format(token=TOKEN, port=urllib.parse.urlsplit(collector_url).port))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
        log.close()


def query(base_url: str, expression: str) -> list[dict[str, Any]]:
    """The instant vector of ``expression``; [] while Prometheus starts or has no sample."""
    url = f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': expression})}"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            answer = json.load(response)
    except OSError:
        return []
    return list(answer["data"]["result"]) if answer.get("status") == "success" else []


def test_prometheus_reads_the_accepted_events(collector_url: str, prometheus: str,
                                              tmp_path: Path) -> None:
    event = {"n": "pageview", "u": "https://scraped.test/", "d": "scraped.test"}
    with httpx.Client(base_url=collector_url, timeout=5) as client:
        for _ in range(3):
            assert client.post("/api/event", json=event,
                               headers={"User-Agent": CHROME_UA}).status_code == 202
    expression = 'collector_rows_accepted_total{job="collector",table="events"}'
    found: list[dict[str, Any]] = []

    def scraped() -> bool:
        found[:] = query(prometheus, expression)
        return bool(found) and found[0]["value"][1] == "3"

    try:
        wait_until(scraped, timeout=30, poll=lambda: time.sleep(0.25))
    except TimeoutError:
        targets = query(prometheus, "up")
        pytest.fail(f"Prometheus did not read the metric: {found}, up={targets}, log: "
                    f"{(tmp_path / 'prometheus.log').read_text()[-2000:]}")
    assert found[0]["metric"]["instance"] == urllib.parse.urlsplit(collector_url).netloc

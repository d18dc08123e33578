"""Dashboard paint benchmark: the built-in dashboard in a real Chromium, on demo data.

    python benchmarks/bench_dashboard.py --events 10000000 [--days 90] [--data-dir DIR]
                                         [--repeat 5]

Generates demo traffic with ``collector demo`` (skipped when ``--data-dir`` already
holds the site), starts ``collector serve`` on a free loopback port, signs in with
an API key and measures, in the browser (Performance marks set by the dashboard):

- **paint**: from navigation start until every part of the dashboard (top stats,
  chart, seven panels, filtered-out counts) has drawn its answer, last 30 days;
- **filter click**: from a click on the top source until every panel has redrawn
  under that filter.

Next to each, in the same run, the server time of the same queries sent one by one
with httpx (what the dashboard asks for, without the browser), so the ratio shows
what the page itself adds. Targets: paint under 1 s, filter click under 500 ms.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from demo_store import demo_arguments
from playwright.sync_api import Page, sync_playwright
from serving import free_port

SITE = "demo.example"
CHROMIUM = "/usr/bin/chromium"
USER_AGENT = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/126.0.0.0 Safari/537.36")
PAINT_TARGET_MS = 1000
FILTER_TARGET_MS = 500
READY = "#dashboard[data-ready='1']"


def collector(data_dir: Path, *arguments: str) -> str:
    environment = {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir)}
    done = subprocess.run([sys.executable, "-m", "collector", *arguments], env=environment,
                          check=True, stdout=subprocess.PIPE, text=True)
    return done.stdout


def prepare(data_dir: Path, events: int, days: int) -> str:
    """Demo data for SITE (unless already there) and a fresh API key."""
    if SITE not in collector(data_dir, "sites", "list"):
        collector(data_dir, "sites", "add", SITE, "--timezone", "Europe/Berlin")
        collector(data_dir, "goals", "add", "--site", SITE, "--event", "Signup")
        started = time.monotonic()
        print(collector(data_dir, "demo", "--site", SITE, "--events", str(events),
                        "--days", str(days)).strip(), f"({time.monotonic() - started:.0f} s)")
    return collector(data_dir, "keys", "create", "--site", SITE).strip().splitlines()[-1]


def serve(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    environment = {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir),
                   "COLLECTOR_ACCESS_LOG": "false"}
    server = subprocess.Popen([sys.executable, "-m", "collector", "serve", "--port", str(port)],
                              env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/login").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("collector serve did not start")


def ready_after(page: Page, started_ms: float) -> float:
    """Milliseconds from ``started_ms`` (page clock) to the dashboard's last ready mark."""
    page.wait_for_selector(READY, state="attached", timeout=60000)
    marks = page.evaluate("performance.getEntriesByName('dashboard-ready').map(m => m.startTime)")
    return float(marks[-1]) - started_ms


def measure_paint(page: Page, url: str) -> float:
    page.goto(url)
    return ready_after(page, 0.0)  # mark times count from navigation start


def measure_filter(page: Page) -> float:
    page.wait_for_selector(READY, state="attached")
    started = page.evaluate(
        "() => { performance.clearMarks('dashboard-ready'); const t = performance.now();"
        " document.querySelector('[data-panel=sources] button.row-filter').click();"
        " return t; }")
    return ready_after(page, float(started))


def panel_queries(page: Page) -> list[tuple[str, dict[str, Any]]]:
    """Every request body the dashboard just sent, with its endpoint."""
    found = page.evaluate(
        "[...document.querySelectorAll('[data-query]')].map(n => [n.dataset.panel,"
        " n.dataset.query])")
    return [("/api/v2/drops" if panel == "filtered" else "/api/v2/query", json.loads(body))
            for panel, body in found]


def server_ms(base: str, key: str, queries: list[tuple[str, dict[str, Any]]]) -> float:
    """The same queries one after another, straight to the API: the server's share."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"},
                      timeout=60) as client:
        started = time.perf_counter()
        for path, body in queries:
            client.post(path, json=body).raise_for_status()
        return (time.perf_counter() - started) * 1000


def run(arguments: Any) -> int:
    data_dir = arguments.data_dir or Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    key = prepare(data_dir, arguments.events, arguments.days)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = serve(data_dir, port)
    paints, filters, paint_server, filter_server = [], [], [], []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                                 args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1440, "height": 900},
                                    user_agent=USER_AGENT)
            page.goto(f"{base}/login")
            page.fill("#key", key)
            page.click("button[type=submit]")
            page.wait_for_selector(READY, state="attached", timeout=120000)  # warm-up
            url = f"{base}/dashboard/{SITE}?period=30d"
            for _ in range(arguments.repeat):
                paints.append(measure_paint(page, url))
                paint_server.append(server_ms(base, key, panel_queries(page)))
                filters.append(measure_filter(page))
                filter_server.append(server_ms(base, key, panel_queries(page)))
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=60)
        if arguments.data_dir is None:
            shutil.rmtree(data_dir, ignore_errors=True)
    report("paint (30 days)", paints, paint_server, PAINT_TARGET_MS)
    report("filter click", filters, filter_server, FILTER_TARGET_MS)
    return 0 if statistics.median(paints) < PAINT_TARGET_MS and \
        statistics.median(filters) < FILTER_TARGET_MS else 1


def report(label: str, browser: list[float], server: list[float], target: int) -> None:
    median, serial = statistics.median(browser), statistics.median(server)
    runs = ", ".join(f"{value:.0f}" for value in browser)
    print(f"{label:16} p50 {median:7.1f} ms in the browser (runs: {runs}); "
          f"same queries one by one on the server {serial:7.1f} ms "
          f"(browser/serial {median / serial:.2f}x); target {target} ms "
          f"({median / target:.2f}x of it)")


def main() -> int:
    parser = demo_arguments(__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--repeat", type=int, default=5)
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())

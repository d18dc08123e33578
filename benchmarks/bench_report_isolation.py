"""Ingest latency while the worst report a key may ask for runs, against ingest alone.

    python benchmarks/bench_report_isolation.py --events 5000000 --days 90 --seconds 20

Writes demo traffic (``collector demo``) into a fresh embedded data directory,
creates an API key, and starts ``collector serve`` on it with its default
settings (the report limits included: COLLECTOR_REPORT_MAX_*). Then sends
pageviews to ``POST /api/event`` at a steady rate (``--rate`` per second over
``--connections`` keep-alive connections) in two phases of ``--seconds`` each:

- ``alone``: ingest only;
- ``with report``: the same, while ``--reporters`` threads send the worst report
  back to back (``--query``, by default: all time, every visit metric, broken down
  by exit page — collapsed visits — under a ``matches_not`` filter with the pattern
  that stalled Python's ``re`` for 18 s, so every visit of the site passes through
  a membership test, and the previous period for comparison).

Latency is measured from each request's scheduled send time (no coordinated
omission: a late answer delays the next request, and that wait counts). Prints
p50, p99 and the slowest ingest answer of each phase, the ratio of the p99s, the
non-202 answers, and each report's time and status (503 once it reaches
COLLECTOR_REPORT_MAX_SECONDS). The target: p99 under 50 ms with the report running.

A smoke run with tiny numbers: ``--events 20000 --days 3 --seconds 2 --rate 50``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from serving import free_port, wait_until_up

SITE = "demo.example"
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/124.0.0.0 Safari/537.36")
WORST_QUERY = {
    "site_id": SITE, "date_range": "all",
    # Every metric a page filter allows (views per visit is refused under one, as in
    # Plausible).
    "metrics": ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration",
                "percentage"],
    "dimensions": ["visit:exit_page"],
    "filters": [["matches_not", "event:page", ["(?:.|.|.|.|.)*Z"]]],
    "include": {"comparison": "previous_period"},
}


def collector(env: dict[str, str], *args: str) -> str:
    """A ``collector`` command's standard output (it fails the benchmark if it fails)."""
    done = subprocess.run([sys.executable, "-m", "collector", *args], env=env, check=True,
                          capture_output=True, text=True)
    return done.stdout


async def _paced_connection(port: int, interval: float, first: float, deadline: float,
                            offset: int, latencies: list[float],
                            statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    scheduled, sent = first, 0
    try:
        while scheduled < deadline:
            await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
            body = json.dumps({"n": "pageview", "d": SITE,
                               "u": f"https://{SITE}/bench/{offset}/{sent}"}).encode()
            writer.write(b"POST /api/event HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: text/plain\r\nUser-Agent: " + CHROME.encode()
                         + b"\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n"
                         + body)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line[15:]) for line in head.split(b"\r\n")
                           if line[:15].lower() == b"content-length:"), 0)
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - scheduled)
            status = int(head[9:12])
            statuses[status] = statuses.get(status, 0) + 1
            sent += 1
            scheduled = first + sent * interval
    finally:
        writer.close()


async def _paced_load(port: int, rate: float, connections: int,
                      seconds: float) -> tuple[list[float], dict[int, int]]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    interval = connections / rate
    start = time.perf_counter() + 0.1
    deadline = start + seconds
    await asyncio.gather(*(
        _paced_connection(port, interval, start + index * interval / connections, deadline,
                          index, latencies, statuses) for index in range(connections)))
    return latencies, statuses


def ingest_phase(port: int, arguments: argparse.Namespace) -> tuple[list[float], dict[int, int]]:
    return asyncio.run(_paced_load(port, arguments.rate, arguments.connections,
                                   arguments.seconds))


class Reporter(threading.Thread):
    """Sends ``query`` back to back until stopped; keeps each one's seconds and status."""

    def __init__(self, port: int, key: str, query: dict[str, Any]) -> None:
        super().__init__(daemon=True)
        self._request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v2/query", data=json.dumps(query).encode(),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        self.stopping = threading.Event()
        self.answers: list[tuple[float, int, str]] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            started = time.perf_counter()
            try:
                with urllib.request.urlopen(self._request, timeout=600) as response:
                    status, detail = response.status, ""
                    response.read()
            except urllib.error.HTTPError as error:
                status, detail = error.code, error.read().decode(errors="replace")[:200]
            self.answers.append((time.perf_counter() - started, status, detail))


def milliseconds(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def show_phase(name: str, latencies: list[float], statuses: dict[int, int]) -> float:
    p99 = milliseconds(latencies, 0.99)
    others = {status: count for status, count in statuses.items() if status != 202}
    print(f"{name:>12}: {len(latencies):6d} events  p50 {milliseconds(latencies, 0.5):7.2f} ms"
          f"  p99 {p99:7.2f} ms  max {max(latencies) * 1000:8.2f} ms"
          f"  not 202: {others or 'none'}")
    return p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=500.0, help="events per second sent")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--reporters", type=int, default=1,
                        help="threads sending the report at once (the reports' store has 4 "
                             "connections)")
    parser.add_argument("--query", type=json.loads, default=WORST_QUERY,
                        help="the report's body as JSON (default: the worst one, see above)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="embedded data directory (default: a fresh temporary one)")
    arguments = parser.parse_args()
    data_dir = arguments.data_dir or Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    port = free_port()
    env = {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir), "COLLECTOR_PORT": str(port),
           "COLLECTOR_ACCESS_LOG": "false"}
    started = time.perf_counter()
    collector(env, "demo", "--site", SITE, "--events", str(arguments.events),
              "--days", str(arguments.days))
    print(f"demo: {arguments.events:,} events over {arguments.days} days in "
          f"{time.perf_counter() - started:.0f} s ({data_dir})")
    key = collector(env, "keys", "create", "--site", SITE).strip().splitlines()[-1]
    server = subprocess.Popen([sys.executable, "-m", "collector", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, server)
        ingest_phase(port, argparse.Namespace(**{**vars(arguments), "seconds": 1.0}))  # warm
        alone = ingest_phase(port, arguments)
        reporters = [Reporter(port, key, arguments.query) for _ in range(arguments.reporters)]
        for reporter in reporters:
            reporter.start()
        time.sleep(0.5)  # the reports are running when the measured phase begins
        loaded = ingest_phase(port, arguments)
        for reporter in reporters:
            reporter.stopping.set()
        for reporter in reporters:
            reporter.join()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=120)
    print(f"ingest at {arguments.rate:g}/s over {arguments.connections} connections, "
          f"{arguments.seconds:g} s per phase")
    p99_alone = show_phase("alone", *alone)
    p99_loaded = show_phase("with report", *loaded)
    print(f"p99 with report / alone: {p99_loaded / p99_alone:.2f}x"
          f"  (target: under 50 ms with the report: {'met' if p99_loaded < 50 else 'NOT met'})")
    answers = [answer for reporter in reporters for answer in reporter.answers]
    times = [seconds for seconds, _, _ in answers]
    by_status: dict[int, int] = {}
    for _, status, _ in answers:
        by_status[status] = by_status.get(status, 0) + 1
    print(f"report: {len(answers)} run(s), median {statistics.median(times):.2f} s, "
          f"longest {max(times):.2f} s, answers {by_status}")
    for _, status, detail in answers:
        if status != 200:
            print(f"  {status}: {detail}")
            break
    if any(status == 400 for _, status, _ in answers):
        # A refused report costs nothing: the phase measured ingest beside no report.
        sys.exit("the report was refused (400), so nothing was measured beside it")


if __name__ == "__main__":
    main()

"""Ingest throughput: the collector against a bare Starlette endpoint, side by side.

Starts, one after the other on loopback and with the same uvicorn settings (one
worker, no access log), a bare Starlette app that only reads the body and
answers 202, and ``collector serve`` on a fresh embedded data directory. Drives
both with the same load (wrk when installed, else benchmarks/loadgen.py), prints
events/s, p50/p99 latency and peak RSS for each, the ratio collector/bare, and
checks that every event the collector accepted is a row in ClickHouse after its
shutdown flush.

    python benchmarks/bench_ingest.py --seconds 10 --connections 32

Set BENCH_NO_WRK=1 to use the bundled load generator even where wrk is installed.

Two durability phases follow (``--phases``), each sending every event to a path of
its own so that the paths answered 202 can be compared with the rows stored:
``outage`` takes the events and visits tables away for the middle half of the run
(inserts fail) and brings them back; ``crash`` SIGKILLs ``collector serve`` halfway
and starts it again on the same data directory, which replays its write-ahead log.
Each prints accepted, stored, duplicates, peak RSS and (crash) the replay time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

BODY = json.dumps({"n": "pageview", "u": "https://bench.example/pricing?utm_source=newsletter",
                   "d": "bench.example", "r": "https://www.google.com/", "w": 1440})
VISITORS = 20000  # distinct client addresses the load comes from
BARE_APP = textwrap.dedent("""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def event(request):
        await request.body()
        return Response(b"ok", 202)

    async def health(request):
        return Response(b"ok")

    app = Starlette(routes=[Route("/api/event", event, methods=["POST"]),
                            Route("/api/health", health)])
""")


# The collector on its own store, for the outage phase: SIGUSR1 takes the raw tables
# away (every insert fails), SIGUSR2 brings them back.
OUTAGE_SERVER = textwrap.dedent("""
    import signal
    import threading

    import uvicorn

    from collector.app import create_app
    from collector.settings import Settings
    from collector.storage import open_store

    settings = Settings.from_env()
    store = open_store(settings.store_url)

    def rename(source, target):
        statement = "RENAME TABLE " + ", ".join(
            f"{table}{source} TO {table}{target}" for table in ("events", "visits"))
        # Not on the event loop: the store's lock may be held by an insert.
        threading.Thread(target=store.command, args=(statement,)).start()

    signal.signal(signal.SIGUSR1, lambda *_: rename("", "_away"))
    signal.signal(signal.SIGUSR2, lambda *_: rename("_away", ""))
    uvicorn.run(create_app(settings, store), host="127.0.0.1", port=settings.port,
                log_level="warning", access_log=False, proxy_headers=False, lifespan="on")
""")
CATCH_UP_SECONDS = 6  # the writer's longest back-off between retries, and a second
REPLAYED = re.compile(r"replayed the batches left by the previous run in ([\d.]+) s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until_up(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def drive(port: int, seconds: float, connections: int) -> dict[str, float]:
    if shutil.which("wrk") and not os.environ.get("BENCH_NO_WRK"):
        return _drive_with_wrk(port, seconds, connections)
    output = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("loadgen.py")), "--port", str(port),
         "--seconds", str(seconds), "--connections", str(connections), "--body", BODY,
         "--visitors", str(VISITORS)],
        capture_output=True, text=True, check=True).stdout
    result = json.loads(output)
    return {"per_second": result["per_second"], "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"], "requests": result["requests"],
            "errors": sum(n for status, n in result["statuses"].items() if status != "202"),
            "tool": "loadgen.py"}


def _drive_with_wrk(port: int, seconds: float, connections: int) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = {json.dumps(BODY)}\n"
        'wrk.headers["Content-Type"] = "text/plain"\n'
        'wrk.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) '
        'AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"\n'
        # Many visitors, as on a real site: each request comes from one of VISITORS
        # addresses (documentation ranges), forwarded by the trusted loopback proxy.
        "request = function()\n"
        f"  local n = math.random(0, {VISITORS - 1})\n"
        '  wrk.headers["X-Forwarded-For"] = "198.18." .. math.floor(n / 256) .. "." .. (n % 256)\n'
        "  return wrk.format()\n"
        "end\n")
    output = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
         f"http://127.0.0.1:{port}/api/event"], capture_output=True, text=True, check=True).stdout
    script.unlink()
    return {"per_second": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
            "p50_ms": _wrk_latency(output, "50%"), "p99_ms": _wrk_latency(output, "99%"),
            "requests": int(re.search(r"(\d+) requests in", output).group(1)),
            "errors": int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)",
                                                          output)) else 0,
            "tool": "wrk"}


def _wrk_latency(output: str, percentile: str) -> float:
    value, unit = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)", output).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_bare(seconds: float, connections: int, workdir: Path) -> dict[str, float]:
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--no-access-log",
         "--log-level", "warning"], cwd=workdir)
    try:
        wait_until_up(port, process)
        result = drive(port, seconds, connections)
        result["peak_rss_mib"] = peak_rss_mib(process.pid)
        return result
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run_collector(seconds: float, connections: int, workdir: Path,
                  access_log: bool) -> dict[str, float]:
    port = free_port()
    data_dir = workdir / "collector-data"
    env = {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir), "COLLECTOR_PORT": str(port),
           "COLLECTOR_ACCESS_LOG": str(access_log).lower(), "COLLECTOR_LOG_LEVEL": "warning",
           "COLLECTOR_TRUSTED_PROXIES": "127.0.0.1/32"}
    process = subprocess.Popen([sys.executable, "-m", "collector", "serve"], env=env,
                               stdout=subprocess.DEVNULL)
    try:
        wait_until_up(port, process)
        result = drive(port, seconds, connections)
        result["peak_rss_mib"] = peak_rss_mib(process.pid)
        health = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/health", timeout=5).read())
        result["accepted"] = health["accepted_rows"].get("events", 0)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    result["stored"] = _count_rows(env)
    return result


def _count_rows(env: dict[str, str]) -> int:
    code = ("from collector.settings import Settings\nfrom collector.storage import open_store\n"
            "print(open_store(Settings.from_env().store_url).rows("
            "'SELECT count() FROM events')[0][0])")
    return int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True).stdout)


class DistinctLoad:
    """Pageviews to /d/<n>, a path per event, over keep-alive connections; remembers the n
    answered 202. A connection that breaks (the server was killed) stops."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted: list[int] = []
        self.statuses: dict[int, int] = {}
        self._next = 0

    async def run(self, seconds: float, connections: int) -> None:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(*(self._connection(deadline) for _ in range(connections)))

    def _request(self, number: int) -> bytes:
        body = json.dumps({"n": "pageview", "u": f"https://bench.example/d/{number}",
                           "d": "bench.example"}).encode()
        visitor = number % VISITORS
        return (f"POST /api/event HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                "Content-Type: text/plain\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) "
                "Gecko/20100101 Firefox/128.0\r\n"
                f"X-Forwarded-For: 198.18.{visitor // 256}.{visitor % 256}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def _connection(self, deadline: float) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        except OSError:
            return
        try:
            while time.perf_counter() < deadline:
                number, self._next = self._next, self._next + 1
                writer.write(self._request(number))
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head[9:12])
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                await reader.readexactly(int(length.group(1)) if length else 0)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 202:
                    self.accepted.append(number)
        except (OSError, asyncio.IncompleteReadError):
            pass  # killed: the answer of the request in flight never came
        finally:
            writer.close()


def _durability_env(workdir: Path, name: str, port: int) -> dict[str, str]:
    return {**os.environ, "COLLECTOR_DATA_DIR": str(workdir / name), "COLLECTOR_PORT": str(port),
            "COLLECTOR_ACCESS_LOG": "false", "COLLECTOR_TRUSTED_PROXIES": "127.0.0.1/32",
            "COLLECTOR_RATE_LIMIT_CLIENT": "0"}


def _stored_paths(env: dict[str, str]) -> dict[str, int]:
    code = ("import json\nfrom collector.settings import Settings\n"
            "from collector.storage import open_store\n"
            "print(json.dumps(dict(open_store(Settings.from_env().store_url).rows("
            "'SELECT pathname, count() FROM events GROUP BY 1'))))")
    return dict(json.loads(subprocess.run([sys.executable, "-c", code], env=env,
                                          capture_output=True, text=True, check=True).stdout))


def _tally(load: DistinctLoad, stored: dict[str, int]) -> dict[str, float]:
    accepted = {f"/d/{number}" for number in load.accepted}
    return {"accepted": len(accepted), "stored": sum(stored.values()),
            "lost": len(accepted - stored.keys()),
            "duplicates": sum(count - 1 for count in stored.values() if count > 1),
            "refused": sum(n for status, n in load.statuses.items() if status != 202)}


def run_outage(seconds: float, connections: int, workdir: Path) -> dict[str, float]:
    """Load for ``seconds``; the raw tables are gone for the middle half of it."""
    port = free_port()
    env = _durability_env(workdir, "outage-data", port)
    (workdir / "outage_server.py").write_text(OUTAGE_SERVER)
    with (workdir / "outage.log").open("ab") as log:  # the writer's warnings
        process = subprocess.Popen([sys.executable, str(workdir / "outage_server.py")],
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    load = DistinctLoad(port)

    async def with_outage() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(seconds / 4, process.send_signal, signal.SIGUSR1)
        loop.call_later(seconds * 3 / 4, process.send_signal, signal.SIGUSR2)
        await load.run(seconds, connections)

    try:
        wait_until_up(port, process)
        asyncio.run(with_outage())
        time.sleep(CATCH_UP_SECONDS)  # the peak RSS includes writing the backlog
        result = {"peak_rss_mib": peak_rss_mib(process.pid)}
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    return {**result, **_tally(load, _stored_paths(env))}


def run_crash(seconds: float, connections: int, workdir: Path) -> dict[str, float]:
    """SIGKILL halfway through the load, then a restart that replays the log."""
    port = free_port()
    env = _durability_env(workdir, "crash-data", port)
    output = workdir / "crash.log"
    load = DistinctLoad(port)
    with output.open("ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "collector", "serve"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT)
    wait_until_up(port, process)
    peaks = []

    def kill() -> None:
        peaks.append(peak_rss_mib(process.pid))
        process.kill()

    async def with_kill() -> None:
        asyncio.get_running_loop().call_later(seconds / 2, kill)
        await load.run(seconds, connections)

    try:
        asyncio.run(with_kill())
    finally:
        process.kill()
        process.wait(timeout=60)
    with output.open("ab") as log:
        restarted = subprocess.Popen([sys.executable, "-m", "collector", "serve"], env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until_up(port, restarted)
        deadline = time.monotonic() + 120
        while not (replay := REPLAYED.search(output.read_text())) \
                and time.monotonic() < deadline:
            time.sleep(0.1)
        result = {"replay_seconds": float(replay.group(1)) if replay else float("nan"),
                  "peak_rss_mib": max([*peaks, peak_rss_mib(restarted.pid)])}
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=120)
    return {**result, **_tally(load, _stored_paths(env))}


def print_durability(name: str, result: dict[str, float]) -> bool:
    """One line per phase; True when every accepted event was stored exactly once."""
    replay = (f", replay {result['replay_seconds']:.2f} s" if "replay_seconds" in result
              else "")
    print(f"{name}: accepted {result['accepted']:.0f}, stored {result['stored']:.0f}, "
          f"lost {result['lost']:.0f}, duplicates {result['duplicates']:.0f}, "
          f"refused (503) {result['refused']:.0f}, peak RSS "
          f"{result['peak_rss_mib']:.0f} MiB{replay}")
    return not result["lost"] and not result["duplicates"]


def run_durability_phases(names: str, seconds: float, connections: int) -> bool:
    """The phases named in ``names``, each on a fresh data directory; True if none lost or
    doubled an event."""
    phases = {"outage": run_outage, "crash": run_crash}
    durable = True
    with tempfile.TemporaryDirectory() as directory:
        for name in filter(None, names.split(",")):
            durable &= print_durability(name, phases[name](seconds, connections, Path(directory)))
    return durable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--access-log", action="store_true",
                        help="run the collector with its access log on (default off, like bare)")
    parser.add_argument("--durability", default="outage,crash",
                        help="durability phases run after the throughput comparison "
                             "(comma-separated; empty for none)")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        bare = run_bare(arguments.seconds, arguments.connections, workdir)
        ours = run_collector(arguments.seconds, arguments.connections, workdir,
                             arguments.access_log)
    print(f"load: {bare['tool']}, {arguments.connections} connections, "
          f"{arguments.seconds:.0f}s each, one uvicorn worker, loopback")
    print(f"{'':12}{'events/s':>12}{'p50 ms':>10}{'p99 ms':>10}{'peak RSS MiB':>14}{'errors':>8}")
    for name, result in (("bare", bare), ("collector", ours)):
        print(f"{name:12}{result['per_second']:>12.0f}{result['p50_ms']:>10.2f}"
              f"{result['p99_ms']:>10.2f}{result['peak_rss_mib']:>14.0f}{result['errors']:>8.0f}")
    print(f"ratio collector/bare: {ours['per_second'] / bare['per_second']:.2f}x (target >= 0.5x)")
    lost = ours["accepted"] - ours["stored"]
    print(f"accepted events: {ours['accepted']}, rows in ClickHouse after shutdown: "
          f"{ours['stored']} ({'no loss' if lost == 0 else f'MISMATCH {lost}'})")
    durable = run_durability_phases(arguments.durability, arguments.seconds,
                                    arguments.connections)
    if lost or ours["errors"] or bare["errors"] or not durable:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

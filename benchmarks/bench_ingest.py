"""Ingest throughput: the collector against a bare Starlette endpoint, side by side.

For each load, starts on loopback with the same uvicorn settings (one worker) a bare
Starlette app that only reads the body and answers 202 (no access log), then
``collector serve`` with its default settings (access log and write-ahead log on; the
loopback proxy trusted, so that forwarded addresses count) on a fresh embedded data
directory. Drives both the same way (wrk when installed, else benchmarks/loadgen.py)
with requests built before the clock starts, under two loads:

- ``visitors``: one body from 20,000 client addresses, as on a real site;
- ``single``: one client address, bodies over 500 pages, keep-alive.

Prints events/s, the ratio collector/bare, p50/p99 latency, peak RSS and, for the
collector, the 202s counted by the load against the rows in ClickHouse after its
shutdown flush.

    python benchmarks/bench_ingest.py --seconds 10 --connections 32 [--without-access-log]

Set BENCH_NO_WRK=1 to use the bundled load generator even where wrk is installed.

Two durability phases follow (``--durability``), each sending every event to a path of
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
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from serving import free_port, wait_until_up

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


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmHWM:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


# Two loads, each a fixed set of requests built once, before the clock starts (a load
# generator that builds a request per send is the bottleneck, and flatters the server):
# "visitors": one body from VISITORS client addresses, forwarded by the trusted loopback
# proxy, as on a real site; "single": one client address whose bodies vary over PATHS
# pages, as from one busy office behind one address.
LOADS = ("visitors", "single")
PATHS = 500
USER_AGENT = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")


def load_body(load: str, number: int) -> str:
    if load == "visitors":
        return BODY
    return json.dumps({"n": "pageview", "u": f"https://bench.example/p/{number % PATHS}",
                       "d": "bench.example", "r": "https://www.google.com/", "w": 1440})


def drive(port: int, seconds: float, connections: int, load: str) -> dict[str, float]:
    if shutil.which("wrk") and not os.environ.get("BENCH_NO_WRK"):
        return _drive_with_wrk(port, seconds, connections, load)
    output = subprocess.run(
        [sys.executable, str(Path(__file__).with_name("loadgen.py")), "--port", str(port),
         "--seconds", str(seconds), "--connections", str(connections), "--body", BODY,
         "--visitors", str(VISITORS if load == "visitors" else 1),
         "--paths", str(PATHS if load == "single" else 0)],
        capture_output=True, text=True, check=True).stdout
    result = json.loads(output)
    return {"per_second": result["per_second"], "p50_ms": result["p50_ms"],
            "p99_ms": result["p99_ms"], "requests": result["requests"],
            "errors": sum(n for status, n in result["statuses"].items() if status != "202"),
            "tool": "loadgen.py"}


def wrk_script(load: str) -> str:
    """A wrk script whose requests are all formatted in ``init``; ``request`` only picks."""
    count = VISITORS if load == "visitors" else PATHS
    bodies = "\n".join(f"  bodies[{n + 1}] = {json.dumps(load_body(load, n))}"
                        for n in range(1 if load == "visitors" else PATHS))
    forwarded = ('    headers["X-Forwarded-For"] = "198.18." .. math.floor(n / 256) .. "." '
                 '.. (n % 256)\n') if load == "visitors" else ""
    return (
        "local requests = {}\n"
        "local bodies = {}\n"
        f"{bodies}\n"
        "init = function(args)\n"
        f"  for n = 0, {count - 1} do\n"
        '    local headers = {["Content-Type"] = "text/plain", '
        f'["User-Agent"] = "{USER_AGENT}"}}\n'
        f"{forwarded}"
        "    requests[n + 1] = wrk.format(\"POST\", \"/api/event\", headers, "
        "bodies[(n % #bodies) + 1])\n"
        "  end\n"
        "end\n"
        "local next_request = 0\n"
        "request = function()\n"
        "  next_request = next_request % #requests + 1\n"
        "  return requests[next_request]\n"
        "end\n")


def _drive_with_wrk(port: int, seconds: float, connections: int,
                    load: str) -> dict[str, float]:
    script = Path(tempfile.mkstemp(suffix=".lua")[1])
    script.write_text(wrk_script(load))
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


def run_bare(seconds: float, connections: int, workdir: Path, load: str) -> dict[str, float]:
    (workdir / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--no-access-log",
         "--log-level", "warning"], cwd=workdir)
    try:
        wait_until_up(port, process, "/api/health", 60)
        result = drive(port, seconds, connections, load)
        result["peak_rss_mib"] = peak_rss_mib(process.pid)
        return result
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def run_collector(seconds: float, connections: int, workdir: Path, load: str,
                  access_log: bool) -> dict[str, float]:
    """``collector serve`` with its default settings — but for the trusted loopback proxy
    the visitors load needs, and the access log when ``access_log`` is False."""
    port = free_port()
    data_dir = workdir / f"collector-data-{load}-{int(access_log)}"
    # The default log level too (info): the access log is written, to /dev/null.
    env = {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir), "COLLECTOR_PORT": str(port),
           "COLLECTOR_TRUSTED_PROXIES": "127.0.0.1/32"}
    if not access_log:
        env["COLLECTOR_ACCESS_LOG"] = "false"
    process = subprocess.Popen([sys.executable, "-m", "collector", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(port, process, "/api/health", 60)
        result = drive(port, seconds, connections, load)
        result["peak_rss_mib"] = peak_rss_mib(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    # Every 202 is an accepted event: the load counts them, ClickHouse must hold as many.
    result["accepted"] = result["requests"] - result["errors"]
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
        wait_until_up(port, process, "/api/health", 60)
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
    wait_until_up(port, process, "/api/health", 60)
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
        wait_until_up(port, restarted, "/api/health", 60)
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
    parser.add_argument("--loads", default=",".join(LOADS),
                        help="throughput loads to run (visitors, single; comma-separated)")
    parser.add_argument("--without-access-log", action="store_true",
                        help="also run the collector with COLLECTOR_ACCESS_LOG=false")
    parser.add_argument("--durability", default="outage,crash",
                        help="durability phases run after the throughput comparison "
                             "(comma-separated; empty for none)")
    arguments = parser.parse_args()
    failed = False
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        for load in filter(None, arguments.loads.split(",")):
            bare = run_bare(arguments.seconds, arguments.connections, workdir, load)
            rows.append((f"{load}: bare", bare))
            variants = [True, False] if arguments.without_access_log else [True]
            for access_log in variants:
                ours = run_collector(arguments.seconds, arguments.connections, workdir, load,
                                     access_log)
                ours["ratio"] = ours["per_second"] / bare["per_second"]
                label = "collector" if access_log else "collector, no access log"
                rows.append((f"{load}: {label}", ours))
                # wrk stops with up to one request per connection in flight: answered
                # after it stopped counting, stored all the same — never fewer.
                in_flight = ours["stored"] - ours["accepted"]
                failed |= bool(not 0 <= in_flight <= arguments.connections or ours["errors"])
            failed |= bool(bare["errors"])
    if rows:  # --loads '' runs the durability phases alone
        print(f"load: {rows[0][1]['tool']}, {arguments.connections} connections, "
              f"{arguments.seconds:.0f}s each, one uvicorn worker, loopback, requests built "
              "before the clock starts")
        print(f"{'':36}{'events/s':>10}{'ratio':>7}{'p50 ms':>8}{'p99 ms':>8}{'RSS MiB':>9}"
              f"{'errors':>7}{'accepted':>10}{'stored':>10}")
        for name, result in rows:
            ratio = f"{result['ratio']:.2f}x" if "ratio" in result else ""
            stored = (f"{result['accepted']:>10.0f}{result['stored']:>10.0f}"
                      if "stored" in result else "")
            print(f"{name:36}{result['per_second']:>10.0f}{ratio:>7}{result['p50_ms']:>8.2f}"
                  f"{result['p99_ms']:>8.2f}{result['peak_rss_mib']:>9.0f}{result['errors']:>7.0f}"
                  f"{stored}")
        print("target: collector >= 0.5x bare under each load; stored = accepted (202s counted "
              "by the load) + at most one in flight per connection when the load stopped")
    durable = run_durability_phases(arguments.durability, arguments.seconds,
                                    arguments.connections)
    if failed or not durable:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

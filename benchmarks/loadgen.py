"""A small HTTP/1.1 keep-alive load generator, used when wrk is not installed.

Opens N connections to one loopback address and sends the same POST over each
for a fixed time, recording each request's latency. Bounded in time and count;
run it in its own process so it does not share a core's interpreter with the server.

    python benchmarks/loadgen.py --port 8000 --seconds 10 --connections 32 --body '{...}'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time


async def _connection(host: str, port: int, requests: list[bytes], deadline: float,
                      latencies: list[float], statuses: dict[int, int], limit: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline and len(latencies) < limit:
            started = time.perf_counter()
            writer.write(random.choice(requests))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


def _bodies(body: bytes, paths: int) -> list[bytes]:
    """``body``, or one variant per page when ``paths`` is set (its ``u`` at /p/<n>)."""
    if not paths:
        return [body]
    event = json.loads(body)
    return [json.dumps({**event, "u": f"https://bench.example/p/{n}"}).encode()
            for n in range(paths)]


async def run(host: str, port: int, path: str, body: bytes, seconds: float, connections: int,
              visitors: int = 1, limit: int = 10_000_000, paths: int = 0) -> dict[str, object]:
    # Every request prepared before the clock starts: one per visitor address
    # (documentation range 198.18.0.0/15; none forwarded for a single visitor) or page.
    bodies = _bodies(body, paths)
    count = max(min(visitors, 65536), len(bodies))
    requests = [
        (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: text/plain\r\n"
         "User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
         "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n"
         + (f"X-Forwarded-For: 198.18.{n // 256}.{n % 256}\r\n" if visitors > 1 else "")
         + f"Content-Length: {len(bodies[n % len(bodies)])}\r\n\r\n").encode()
        + bodies[n % len(bodies)]
        for n in range(count)
    ]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_connection(host, port, requests, deadline, latencies, statuses, limit)
                           for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "statuses": statuses,
        "per_second": len(latencies) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0.0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/api/event")
    parser.add_argument("--body", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--visitors", type=int, default=1, help="distinct client addresses")
    parser.add_argument("--paths", type=int, default=0,
                        help="vary the body's page over this many paths (0: the body as given)")
    arguments = parser.parse_args()
    if not arguments.host.startswith("127.") and arguments.host not in ("localhost", "::1"):
        parser.error("load is only ever sent to loopback addresses")
    result = asyncio.run(run(arguments.host, arguments.port, arguments.path,
                             arguments.body.encode(), arguments.seconds, arguments.connections,
                             arguments.visitors, paths=arguments.paths))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

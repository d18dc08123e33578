"""What the ingest rate limits cost per event: ``RateLimits.admit`` in a loop.

    python benchmarks/bench_ratelimit.py [--requests 200000]

The pipeline calls ``admit`` with the client address it resolved for the visitor hash
(so the limits resolve nothing themselves). Each case cycles through 20,000 visitor
addresses (the ingest benchmark's load), so buckets are found, refilled and forgotten as
in production; CPU time per call, the loop included.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from collector.errors import TooManyRequests
from collector.ratelimit import RateLimits
from collector.settings import Settings
from collector.sites import Site

ADDRESSES = [f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}"
             for index in range(20_000)]
IPV6_ADDRESSES = [f"2001:db8:{index:x}::1" for index in range(20_000)]
SITES = [Site("bench.test")]


def per_call_ns(call: Callable[[int], object], requests: int) -> float:
    started = time.process_time_ns()
    for index in range(requests):
        call(index)
    return (time.process_time_ns() - started) / requests


def refused(limits: RateLimits) -> Callable[[int], object]:
    def call(index: int) -> None:
        try:
            limits.admit("203.0.113.9", SITES)
        except TooManyRequests:
            pass

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    requests = parser.parse_args().requests
    off = RateLimits(Settings(rate_limit_client=0))
    defaults = RateLimits(Settings())
    with_site = RateLimits(Settings(rate_limit_site=1e9))
    count = len(ADDRESSES)
    cases: dict[str, Callable[[int], object]] = {
        "off (COLLECTOR_RATE_LIMIT_CLIENT=0)": lambda i: off.admit(ADDRESSES[i % count], SITES),
        "defaults (client limit), IPv4": lambda i: defaults.admit(ADDRESSES[i % count], SITES),
        "defaults (client limit), IPv6":
            lambda i: defaults.admit(IPV6_ADDRESSES[i % count], SITES),
        "client + site limits": lambda i: with_site.admit(ADDRESSES[i % count], SITES),
        "one client over its limit (429s)": refused(RateLimits(Settings())),
    }
    for name, call in cases.items():
        print(f"{name:40s} {per_call_ns(call, requests):7.0f} ns per event")


if __name__ == "__main__":
    main()

"""Per-event cost of enrichment, in microseconds (not part of the test suite).

    python benchmarks/bench_enrich.py

Reads the shared corpora in ../shared/testdata. The user-agent figures include bot
detection; "stock" is ``user_agents.parse`` with its default (pure-Python) parser,
measured in the same run for the ratio.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import user_agents

from collector.enrich import (
    GeoLookup,
    SpamList,
    classify_referrer,
    classify_user_agent,
    primary_language,
)
from collector.enrich.referrers import KNOWN_REFERRERS
from collector.enrich.useragent import warm_up

TESTDATA = Path(__file__).resolve().parents[2] / "shared" / "testdata"
USERAGENTS = TESTDATA / "useragents"
MAXMIND = TESTDATA / "maxmind"
STOCK_SAMPLE = 2000  # the stock parser needs ~1 ms per new string; a sample is enough

TARGETS = {"ua weighted": 5.0, "ua distinct": 50.0}


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line]


def _mean_us(function: Callable[[str], object], items: Sequence[str]) -> float:
    # CPU time of this process: what limits throughput, and less disturbed than wall
    # time by other work on a shared machine.
    started = time.process_time()
    for item in items:
        function(item)
    return (time.process_time() - started) / len(items) * 1e6


def _stock(ua: str) -> tuple[bool, bool, bool, bool]:
    parsed = user_agents.parse(ua)
    return parsed.is_bot, parsed.is_mobile, parsed.is_tablet, parsed.is_pc


def _user_agent_rows() -> list[tuple[str, int, float, float | None]]:
    weighted = _lines(USERAGENTS / "traffic-weighted-10k.txt")
    distinct = _lines(USERAGENTS / "distinct-10k.txt")
    # A running server's regex engines are warm: warm them on other strings (the
    # crawler-user-agents examples), outside the timed runs and the LRU cache.
    warm_up()
    classify_user_agent.cache_clear()
    ours_weighted = _mean_us(classify_user_agent, weighted)
    classify_user_agent.cache_clear()
    ours_distinct = _mean_us(classify_user_agent, distinct)
    stock_weighted = _mean_us(_stock, weighted[:STOCK_SAMPLE])
    stock_distinct = _mean_us(_stock, distinct[:STOCK_SAMPLE])
    return [
        ("ua weighted", len(weighted), ours_weighted, stock_weighted),
        ("ua distinct", len(distinct), ours_distinct, stock_distinct),
    ]


def _geo_rows() -> list[tuple[str, int, float, float | None]]:
    city, asn = MAXMIND / "GeoIP2-City-Test.mmdb", MAXMIND / "GeoLite2-ASN-Test.mmdb"
    known = ["81.2.69.142", "89.160.20.112", "216.160.83.56", "2001:218::", "1.128.0.0"]
    rng = random.Random(7)
    unknown = [".".join(str(rng.randrange(1, 255)) for _ in range(4)) for _ in range(10_000)]
    repeated = known * 2000
    default = GeoLookup(city, asn)
    cached = GeoLookup(city, asn, cache_size=4096)
    return [
        ("geo found", len(repeated), _mean_us(default.lookup, repeated), None),
        ("geo not found", len(unknown), _mean_us(default.lookup, unknown), None),
        ("geo found, cache opt-in", len(repeated), _mean_us(cached.lookup, repeated), None),
    ]


def _other_rows() -> list[tuple[str, int, float, float | None]]:
    spam_hosts = _lines(TESTDATA / "referrers" / "spammers.txt")
    hosts = [f"www.{host}" for host in KNOWN_REFERRERS] + spam_hosts
    classify_referrer.cache_clear()
    referrer_new = _mean_us(classify_referrer, hosts)
    referrer_cached = _mean_us(classify_referrer, hosts)
    spam = SpamList(spam_hosts)
    languages = ["en-US,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr", "pt-BR", "es-419,es;q=0.9"]
    many_languages = languages * 2000
    return [
        ("referrer new host", len(hosts), referrer_new, None),
        ("referrer cached host", len(hosts), referrer_cached, None),
        ("spam check", len(hosts), _mean_us(spam.is_spam, hosts), None),
        ("primary_language", len(many_languages), _mean_us(primary_language, many_languages), None),
    ]


def main() -> int:
    rows = _user_agent_rows() + _geo_rows() + _other_rows()
    print(f"{'operation':<24} {'n':>6} {'µs/event':>9} {'stock µs':>9} {'ratio':>7} {'target':>7}")
    failed = False
    for name, count, ours, stock in rows:
        stock_text = f"{stock:9.1f}" if stock is not None else f"{'':9}"
        ratio = f"{stock / ours:6.0f}x" if stock is not None else f"{'':7}"
        target = TARGETS.get(name)
        target_text = f"≤{target:5.0f}" if target is not None else ""
        if target is not None and ours > target:
            failed = True
        print(f"{name:<24} {count:>6} {ours:9.2f} {stock_text} {ratio} {target_text:>7}")
    print(f"python {sys.version.split()[0]}; CPU µs per call; ratio = stock / ours, same run")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Dashboard report benchmark: rollups against the raw tables, in one run.

    python benchmarks/bench_reports.py --events 10000000 [--days 90] [--data-dir DIR]

Generates demo traffic (``collector.reports.demo``) into an embedded engine,
then runs the dashboard's full query set for the last 30 days — top stats with
comparison, the daily timeseries and 8 breakdowns — through the same code as
``POST /api/v2/query``: once as planned (rollups) and once from the raw tables
alone (exact, no sampling). Prints p50 per query, the totals, the ratio, and
checks that both give the same answers (visitors within the uniq error bound).
"""

from __future__ import annotations

import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from demo_store import demo_arguments, open_demo_store

from collector.reports.builder import SiteContext
from collector.reports.demo import generate, progress_bar
from collector.reports.query import Report, run_report
from collector.reports.request import QuerySpec, parse_query
from collector.reports.sampling import Sampler
from collector.storage import Store

SITE = "demo.example"
# uniq() is exact below 65536 values and within ~1-2% above; counts must match exactly.
VISITOR_TOLERANCE = 0.02
# A 1/N visitor sample misses by about sqrt(visitors * (N - 1)) (binomial); allow 4 of those.
SAMPLING_SIGMAS = 4
# As in a running app: one sampler remembers range sizes across the dashboard's queries.
SAMPLER = Sampler()
BREAKDOWNS = {
    "pages": ("event:page", ["visitors", "pageviews"]),
    "entry pages": ("visit:entry_page", ["visitors", "visits", "bounce_rate"]),
    "sources": ("visit:source", ["visitors", "visits", "bounce_rate", "visit_duration"]),
    "channels": ("visit:channel", ["visitors", "visits"]),
    "browsers": ("visit:browser", ["visitors", "percentage"]),
    "operating systems": ("visit:os", ["visitors", "percentage"]),
    "devices": ("visit:device", ["visitors", "percentage"]),
    "countries": ("visit:country", ["visitors", "percentage"]),
}


def dashboard_queries() -> dict[str, QuerySpec]:
    base = {"site_id": SITE, "date_range": "30d"}
    queries = {
        "top stats + comparison": {
            **base, "metrics": ["visitors", "visits", "pageviews", "views_per_visit",
                                "bounce_rate", "visit_duration"],
            "include": {"comparison": "previous_period"}},
        "timeseries (day)": {**base, "metrics": ["visitors", "visits", "pageviews"],
                             "dimensions": ["time:day"]},
    }
    for label, (dimension, metrics) in BREAKDOWNS.items():
        queries[label] = {**base, "metrics": metrics, "dimensions": [dimension],
                          "pagination": {"limit": 9}}
    return {label: parse_query(body) for label, body in queries.items()}


def prepare(store: Store, events: int, days: int, now: datetime) -> None:
    stored = store.rows("SELECT count() FROM events WHERE site = {site:String}",
                        {"site": SITE})[0][0]
    if stored:
        print(f"reusing {stored:,} stored demo events", file=sys.stderr)
    else:
        result = generate(store, SITE, events, days, now=now, progress=progress_bar)
        print(f"\ngenerated {result.events:,} events / {result.visits:,} visits in "
              f"{result.seconds:.1f} s = {result.events_per_second:,.0f} events/s",
              file=sys.stderr)
        # Merge the rollups as a long-running server would have by now.
        for table in ("visits_rollup", "visits_rollup_daily", "events_rollup_daily"):
            store.command(f"OPTIMIZE TABLE {table} FINAL")
    wait_for_merges(store)


def wait_for_merges(store: Store) -> None:
    """Let background merges of freshly written parts finish: they would skew the timings."""
    started = time.perf_counter()
    while running := store.rows("SELECT count() FROM system.merges "
                                "WHERE database = currentDatabase()")[0][0]:
        print(f"\rwaiting for {running} background merges "
              f"({time.perf_counter() - started:.0f} s)", end="", file=sys.stderr, flush=True)
        time.sleep(2)
    print(file=sys.stderr)


def timed(store: Store, spec: QuerySpec, now: datetime, raw: bool,
          repeat: int) -> tuple[float, Report]:
    context = SiteContext(SITE)
    durations = []
    report = None
    for _ in range(repeat):
        started = time.perf_counter()
        report = run_report(store, spec, context, now, force_raw=raw, allow_sampling=not raw,
                            sampler=SAMPLER)
        durations.append(time.perf_counter() - started)
    assert report is not None
    return statistics.median(durations) * 1000, report


def differences(spec: QuerySpec, planned: Report, raw: Report) -> list[str]:
    """Where the planned (rollup) answer differs from the raw one beyond the stated bounds.

    Rows are matched by their dimensions: with sampled visitors, rows whose visitor
    counts are within the sampling error may swap places (and at the page limit, in
    or out of the top rows); those are compared, not their positions.
    """
    problems = []
    sample = 100 / planned.meta.get("visitors_sample_percent", 100)
    theirs = {tuple(row["dimensions"]): row for row in raw.results}
    matched = 0
    for mine in planned.results:
        other = theirs.get(tuple(mine["dimensions"]))
        if other is None:
            continue
        matched += 1
        pairs = [(mine["metrics"], other["metrics"])]
        if "comparison" in mine:
            pairs.append((mine["comparison"]["metrics"], other["comparison"]["metrics"]))
        for values, other_values in pairs:
            for name, value, expected in zip(spec.metrics, values, other_values):
                if not _close(name, value, expected, sample, other_values[0]):
                    problems.append(f"{mine['dimensions']} {name}: {value} vs {expected}")
    if matched < len(raw.results) - (1 if sample > 1 else 0):
        problems.append(f"only {matched} of {len(raw.results)} rows in both answers")
    return problems


def _close(name: str, value: Any, other: Any, sample: float, visitors: float) -> bool:
    """Counts exactly equal; visitors (and shares of them) within the stated error."""
    if name not in ("visitors", "percentage"):
        return bool(value == other)
    allowed = VISITOR_TOLERANCE * max(abs(other), 1)
    if sample > 1:
        sampling_error = SAMPLING_SIGMAS * (max(visitors, 1) * (sample - 1)) ** 0.5
        allowed += sampling_error if name == "visitors" else \
            100 * sampling_error / max(visitors, 1) * max(abs(other), 1) / 100
    return abs(value - other) <= allowed


def main() -> int:
    parser = demo_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per query (p50 shown)")
    arguments = parser.parse_args()
    store = open_demo_store(arguments, "bench-reports-", "bench")
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    prepare(store, arguments.events, arguments.days, now)
    print(f"\n{'query':<24}{'rollup p50 ms':>14}{'raw p50 ms':>12}{'ratio':>8}  source")
    totals = [0.0, 0.0]
    failures = []
    for label, spec in dashboard_queries().items():
        planned_ms, planned = timed(store, spec, now, False, arguments.repeat)
        raw_ms, raw = timed(store, spec, now, True, arguments.repeat)
        totals[0] += planned_ms
        totals[1] += raw_ms
        failures += [f"{label}: {problem}" for problem in differences(spec, planned, raw)]
        sampled = planned.meta.get("visitors_sample_percent")
        print(f"{label:<24}{planned_ms:>14.1f}{raw_ms:>12.1f}{raw_ms / planned_ms:>7.1f}x  "
              f"{planned.meta['table']}"
              + (f" (visitors from a {sampled}% sample)" if sampled else ""))
    print(f"{'full dashboard':<24}{totals[0]:>14.1f}{totals[1]:>12.1f}"
          f"{totals[1] / totals[0]:>7.1f}x")
    print("answers: " + ("identical to raw (counts exact; visitors within 2% uniq error "
                         "plus 4 sigma of the visitor sample, when sampled)" if not failures
                         else f"{len(failures)} differences"))
    for failure in failures[:20]:
        print(f"  {failure}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

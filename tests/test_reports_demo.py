"""Demo traffic: events and visits agree, and rollups answer like the raw tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone

import pytest

from collector.reports.builder import SiteContext
from collector.reports.demo import generate
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.storage import Store

SITE = "demo.example"
NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module", autouse=True)
def demo(store: Store) -> Iterator[None]:
    seen: list[tuple[int, int]] = []
    result = generate(store, SITE, 30_000, 14, now=NOW,
                      progress=lambda done, total, seconds: seen.append((done, total)))
    assert seen[-1] == (30_000, 30_000)
    assert abs(result.events - 30_000) < 600
    yield


def test_visits_and_events_describe_the_same_traffic(store: Store) -> None:
    visits, events, pageviews = store.rows(
        "SELECT sum(sign), sum(sign * events), sum(sign * pageviews) FROM visits "
        "WHERE site = {site:String}", {"site": SITE})[0]
    counted = store.rows(
        "SELECT uniqExact(visit), count(), countIf(name = 'pageview') FROM events "
        "WHERE site = {site:String}", {"site": SITE})[0]
    assert (visits, events, pageviews) == counted
    mismatched = store.rows(
        "SELECT count() FROM visits AS v INNER JOIN (SELECT visit, min(timestamp) AS first, "
        "argMin(pathname, timestamp) AS entry FROM events GROUP BY visit) AS e USING visit "
        "WHERE v.start_time != e.first OR v.entry_page != e.entry")[0][0]
    assert mismatched == 0


def test_traffic_is_diurnal_and_within_the_period(store: Store) -> None:
    first, last = store.rows("SELECT min(timestamp), max(timestamp) FROM events")[0]
    assert (NOW.replace(tzinfo=None) - first).days <= 14 and last <= NOW.replace(tzinfo=None)
    by_hour = dict(store.rows("SELECT toHour(timestamp), count() FROM events GROUP BY 1"))
    assert by_hour[11] > 3 * by_hour[3]


@pytest.mark.parametrize("dimension", ["", "time:day", "event:page", "visit:entry_page",
                                       "visit:source", "visit:channel", "visit:browser",
                                       "visit:os", "visit:device", "visit:country",
                                       "visit:city", "visit:utm_campaign"])
def test_rollups_equal_raw_on_demo_data(store: Store, dimension: str) -> None:
    metrics = ["visitors", "pageviews"] if dimension.startswith("event:") else \
        ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "events"]
    spec = parse_query({"site_id": SITE, "date_range": "7d", "metrics": metrics,
                        "dimensions": [dimension] if dimension else [],
                        "include": {"comparison": "previous_period"}})
    planned = run_report(store, spec, SiteContext(SITE), NOW)
    raw = run_report(store, spec, SiteContext(SITE), NOW, force_raw=True)
    assert planned.meta["source"] == "rollup" and raw.meta["source"] == "raw"
    assert planned.results == raw.results

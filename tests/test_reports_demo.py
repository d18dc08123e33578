"""Demo traffic: events and visits agree, and rollups answer like the raw tables."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from collector.reports.builder import SiteContext
from collector.reports.demo import generate
from collector.reports.dimensions import DIMENSIONS
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.reports.sampling import Sampler, SamplingPolicy
from collector.storage import Store, migrate, open_store

SITE = "demo.example"
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


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


@pytest.mark.parametrize("now", [datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
                                 datetime(2026, 3, 1, 0, 7, 30, tzinfo=UTC),
                                 datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)])
def test_nothing_lies_after_now_whatever_the_hour(engine_url: str, now: datetime) -> None:
    """Just after midnight, visits planned late 'today' move back and still end before now."""
    from tests.conftest import fresh_database_name

    other = open_store(engine_url, fresh_database_name("demo_now"))
    migrate(other)
    generate(other, SITE, 20_000, 2, now=now)
    first, last = other.rows("SELECT min(timestamp), max(timestamp) FROM events")[0]
    assert last < now.replace(tzinfo=None)
    assert (now.replace(tzinfo=None) - first).days <= 2
    ended = other.rows("SELECT max(start_time + toIntervalSecond(duration)) FROM visits")[0][0]
    assert ended < now.replace(tzinfo=None)


@pytest.mark.parametrize("dimension", ["", "time:day", *(
    name for name, spec in DIMENSIONS.items()
    if spec.level != "time" and spec.in_rollup and name != "event:goal")])
def test_rollups_equal_raw_on_demo_data(store: Store, dimension: str,
                                        rollups_in_use: Sampler) -> None:
    metrics = ["visitors", "pageviews"] if dimension.startswith("event:") else \
        ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "events"]
    spec = parse_query({"site_id": SITE, "date_range": "7d", "metrics": metrics,
                        "dimensions": [dimension] if dimension else [],
                        "include": {"comparison": "previous_period"}})
    planned = run_report(store, spec, SiteContext(SITE), NOW, sampler=rollups_in_use)
    raw = run_report(store, spec, SiteContext(SITE), NOW, force_raw=True, sampler=rollups_in_use)
    assert planned.meta["source"] == "rollup" and raw.meta["source"] == "raw"
    assert planned.meta["visitors_sample_percent"] == 6.25  # the same sample on both
    assert planned.results == raw.results


def test_small_ranges_count_exact_visitors_from_raw(store: Store) -> None:
    spec = parse_query({"site_id": SITE, "date_range": "7d", "metrics": ["visitors", "visits"],
                        "dimensions": ["visit:browser"]})
    planned = run_report(store, spec, SiteContext(SITE), NOW)
    exact = run_report(store, spec, SiteContext(SITE), NOW, allow_sampling=False)
    assert planned.meta["source"] == "raw" and "visitors_sample_percent" not in planned.meta
    assert planned.results == exact.results


def test_large_ranges_read_a_visitor_sample_equal_to_raw_sample(store: Store) -> None:
    sampler = Sampler(SamplingPolicy(exact_visitors_up_to_visits=0))
    spec = parse_query({"site_id": SITE, "date_range": "7d", "metrics": ["visitors", "visits"],
                        "dimensions": ["visit:device"]})
    planned = run_report(store, spec, SiteContext(SITE), NOW, sampler=sampler)
    exact = run_report(store, spec, SiteContext(SITE), NOW, force_raw=True, sampler=sampler)
    assert planned.meta["visitors_sample_percent"] == 6.25
    assert planned.period is not None
    start, end = (int(moment.timestamp()) for moment in (planned.period.start,
                                                         planned.period.end))
    sampled = dict(store.rows(
        "SELECT device, uniq(visitor) * 16 FROM visits SAMPLE 1/16 WHERE site = {site:String} "
        "AND start_time >= toDateTime({start:UInt32}) AND start_time < toDateTime({end:UInt32}) "
        "GROUP BY device", {"site": SITE, "start": start, "end": end}))
    for mine, theirs in zip(planned.results, exact.results):
        assert mine["metrics"][0] == sampled[mine["dimensions"][0]]  # the same sampled visitors
        assert mine["metrics"][1] == theirs["metrics"][1]  # visits stay exact
    # k > 1 folds on exact visitors, never on a sample.
    folded = run_report(store, spec, SiteContext(SITE, k=2), NOW, sampler=sampler)
    assert "visitors_sample_percent" not in folded.meta


def test_raw_queries_over_many_rows_are_sampled_and_scaled(store: Store) -> None:
    spec = parse_query({"site_id": SITE, "date_range": "7d", "metrics": ["visitors", "visits"],
                        "filters": [["is_not", "visit:country", ["XX"]]]})
    sampler = Sampler(SamplingPolicy(sample_above_rows=3_000))
    sampled = run_report(store, spec, SiteContext(SITE), NOW, sampler=sampler)
    exact = run_report(store, spec, SiteContext(SITE), NOW, allow_sampling=False)
    assert 0 < sampled.meta["sample_percent"] < 100
    visits, exact_visits = sampled.results[0]["metrics"][1], exact.results[0]["metrics"][1]
    assert visits != exact_visits and abs(visits - exact_visits) < 0.3 * exact_visits

"""scroll_depth and time_on_page, from engagement events sent through ``POST /api/event``.

The traffic goes through the whole ingest path (parsing, visitor hashing, visits) with
a clock the test moves; every expected number is worked out by hand in the comments.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.reports.auth import SHARE, create_key
from collector.reports.builder import SiteContext, build, plan
from collector.reports.dates import resolve
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.reports.sampling import Sampler
from collector.storage import Store
from tests.conftest import flush, running_app
from tests.reporting_data import day

SITE = "engaged.example"
DAY = day(0)
START = datetime.combine(DAY, time(10, 0), UTC)
# One browser per visitor: the visitor hash is of the site, the address and the user agent.
BROWSERS = {name: ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, "
                   f"like Gecko) Chrome/{version}.0.0.0 Safari/537.36")
            for name, version in (("ann", 120), ("bob", 121), ("cat", 122), ("dan", 123))}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now.timestamp()


# (seconds after 10:00, visitor, event, page, scroll depth, engagement ms)
TRAFFIC = [
    # ann, one visit: /blog read to 70% over 50 s in two reports, then /pricing.
    (0, "ann", "pageview", "/blog", None, None),
    (30, "ann", "engagement", "/blog", 40, 30_000),
    (60, "ann", "engagement", "/blog", 70, 20_000),
    (70, "ann", "pageview", "/pricing", None, None),
    (120, "ann", "engagement", "/pricing", 100, 44_000),
    # bob, one visit with /blog seen twice: deepest 90% in all, 40 s + 60 s.
    (300, "bob", "pageview", "/blog", None, None),
    (340, "bob", "engagement", "/blog", 30, 40_000),
    (360, "bob", "pageview", "/blog", None, None),
    (420, "bob", "engagement", "/blog", 90, 60_000),
    # cat: pages but no engagement report (a tracker that sends none).
    (600, "cat", "pageview", "/blog", None, None),
    (610, "cat", "pageview", "/about", None, None),
    # dan: an engagement report without a visit to go with: counts nowhere.
    (900, "dan", "engagement", "/blog", 100, 5_000),
]


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    clock = Clock()
    with running_app(store, engine_url, clock=clock) as running:
        for seconds, visitor, name, page, depth, engaged in TRAFFIC:
            clock.now = START + timedelta(seconds=seconds)
            body: dict[str, Any] = {"n": name, "u": f"https://{SITE}{page}", "d": SITE}
            if name == "engagement":
                body.update(sd=depth, e=engaged)
            answer = running.post("/api/event", json=body,
                                  headers={"User-Agent": BROWSERS[visitor]})
            assert answer.status_code == 202 and "x-collector-dropped" not in answer.headers
        flush(running)
        clock.now = START + timedelta(days=1)
        yield running


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


def query(client: TestClient, key: str, **body: Any) -> Any:
    return client.post("/api/v2/query", headers={"Authorization": f"Bearer {key}"},
                       json={"site_id": SITE, "date_range": [DAY.isoformat()] * 2, **body})


def results(client: TestClient, key: str, **body: Any) -> list[Any]:
    answer = query(client, key, **body)
    assert answer.status_code == 200, answer.text
    return [(row["dimensions"], row["metrics"]) for row in answer.json()["results"]]


def test_the_engagement_reports_are_stored_on_their_visits(client: TestClient,
                                                           store: Store) -> None:
    rows = store.rows("SELECT pathname, scroll_depth, engaged_ms, visit != 0 FROM events "
                      "WHERE site = {site:String} AND name = 'engagement' ORDER BY timestamp",
                      {"site": SITE})
    assert rows == [("/blog", 40, 30_000, 1), ("/blog", 70, 20_000, 1),
                    ("/pricing", 100, 44_000, 1), ("/blog", 30, 40_000, 1),
                    ("/blog", 90, 60_000, 1), ("/blog", 100, 5_000, 0)]


def test_per_page(client: TestClient, key: str) -> None:
    # /blog: ann's deepest 70 and bob's 90 average 80; 50 s and 100 s average 75 s; cat
    # counts as a visitor but reported nothing, dan's report belongs to no visit.
    # /pricing: ann alone, 100% and 44 s. /about: nobody reported, so no value.
    assert results(client, key, metrics=["visitors", "scroll_depth", "time_on_page"],
                   dimensions=["event:page"]) == [
        (["/blog"], [3, 80, 75]), (["/about"], [1, None, None]), (["/pricing"], [1, 100, 44])]


def test_for_a_page_filter(client: TestClient, key: str) -> None:
    assert results(client, key, metrics=["scroll_depth", "time_on_page", "pageviews"],
                   filters=[["is", "event:page", ["/blog"]]]) == [([], [80, 75, 4])]


def test_over_several_pages_each_visit_counts_its_deepest_scroll(client: TestClient,
                                                                 key: str) -> None:
    # ann's deepest over /blog and /pricing is 100, bob's 90: 95. Time: (50 + 44 + 100) / 2.
    assert results(client, key, metrics=["scroll_depth", "time_on_page", "visitors"],
                   filters=[["is", "event:page", ["/blog", "/pricing"]]]) == [([], [95, 97, 3])]


def test_by_day_and_by_hour(client: TestClient, key: str) -> None:
    page = [["is", "event:page", ["/pricing"]]]
    assert results(client, key, metrics=["scroll_depth", "time_on_page"],
                   dimensions=["time:day"], filters=page) == [([DAY.isoformat()], [100, 44])]
    assert results(client, key, metrics=["time_on_page"], dimensions=["time:hour"],
                   filters=[["is", "event:page", ["/blog"]]]) == [
        ([f"{DAY.isoformat()} 10:00:00"], [75])]


def test_ordered_by_an_engagement_metric(client: TestClient, key: str) -> None:
    rows = results(client, key, metrics=["scroll_depth"], dimensions=["event:page"],
                   order_by=[["scroll_depth", "desc"]])
    assert rows == [(["/pricing"], [100]), (["/blog"], [80]), (["/about"], [None])]


def test_with_a_visit_filter(client: TestClient, key: str) -> None:
    # Only bob's visit ended on /blog (ann's on /pricing, cat's on /about).
    assert results(client, key, metrics=["scroll_depth", "time_on_page"],
                   dimensions=["event:page"],
                   filters=[["is", "visit:exit_page", ["/blog"]]]) == [(["/blog"], [90, 100])]


def test_comparison_with_a_period_without_engagement(client: TestClient, key: str) -> None:
    answer = query(client, key, metrics=["scroll_depth", "visitors"],
                   filters=[["is", "event:page", ["/blog"]]],
                   include={"comparison": "previous_period"})
    assert answer.status_code == 200, answer.text
    result = answer.json()["results"][0]
    assert result["metrics"] == [80, 3]
    assert result["comparison"]["metrics"] == [None, 0]
    assert result["comparison"]["change"] == [None, 100]


@pytest.mark.parametrize("body", [
    {"metrics": ["scroll_depth"]},
    {"metrics": ["visitors", "time_on_page"], "dimensions": ["visit:source"]},
    {"metrics": ["scroll_depth"], "filters": [["not", ["is", "event:page", ["/blog"]]]]},
    {"metrics": ["time_on_page"], "dimensions": ["event:name"]},
])
def test_without_event_page_they_are_refused(client: TestClient, key: str,
                                             body: dict[str, Any]) -> None:
    answer = query(client, key, **body)
    assert answer.status_code == 400
    assert answer.json()["field"] == f"metrics[{len(body['metrics']) - 1}]"
    assert "can only be queried with event:page filters or dimensions" in answer.json()["error"]


@pytest.mark.parametrize("body", [
    {"metrics": ["scroll_depth"], "dimensions": ["visit:source"],
     "filters": [["is", "event:page", ["/blog"]]]},
    {"metrics": ["bounce_rate", "scroll_depth"], "filters": [["is", "event:page", ["/blog"]]]},
])
def test_at_visit_level_they_are_refused(client: TestClient, key: str,
                                         body: dict[str, Any]) -> None:
    answer = query(client, key, **body)
    assert answer.status_code == 400
    assert "is an event metric" in answer.json()["error"]


def test_they_are_read_from_raw_events_even_where_a_rollup_answers(
        client: TestClient, store: Store, rollups_in_use: Sampler) -> None:
    context = SiteContext(SITE)
    now = START + timedelta(days=1)
    visitors = parse_query({"site_id": SITE, "date_range": [DAY.isoformat()] * 2,
                            "metrics": ["visitors"], "dimensions": ["event:page"]})
    engaged = parse_query({"site_id": SITE, "date_range": [DAY.isoformat()] * 2,
                           "metrics": ["visitors", "scroll_depth", "time_on_page"],
                           "dimensions": ["event:page"]})
    period = resolve(engaged.date_range, "UTC", now, None)
    assert plan(visitors, period).is_rollup
    chosen = plan(engaged, period)
    assert (chosen.source, chosen.is_rollup) == ("events", False)
    where = build(engaged, context, period, chosen).sql.split(" WHERE ", 1)[1].split(" GROUP ")[0]
    assert "name != 'engagement'" not in where  # the engagement events are read
    # The rollups' visitor sample counts visitors; the engagement sums stay exact.
    report = run_report(store, engaged, context, now, sampler=rollups_in_use)
    assert report.meta["source"] == "raw"
    assert sorted((row["dimensions"], row["metrics"][1:]) for row in report.results) == [
        (["/about"], [None, None]), (["/blog"], [80, 75]), (["/pricing"], [100, 44])]


def test_a_threshold_folds_rare_pages_with_their_engagement(client: TestClient,
                                                            store: Store) -> None:
    # k = 2: /about and /pricing (one visitor each) fold into (other), whose engagement
    # is ann's on /pricing alone.
    spec = parse_query({"site_id": SITE, "date_range": [DAY.isoformat()] * 2,
                        "metrics": ["visitors", "scroll_depth", "time_on_page"],
                        "dimensions": ["event:page"]})
    report = run_report(store, spec, SiteContext(SITE, k=2), START + timedelta(days=1))
    assert [(row["dimensions"], row["metrics"]) for row in report.results] == [
        (["/blog"], [3, 80, 75]), (["(other)"], [2, 100, 44])]


def test_a_share_link_gets_them_thresholded_like_any_count(client: TestClient,
                                                            store: Store) -> None:
    # Three visitors of /blog are fewer than the public k of 5: suppressed, not computed
    # from the rare visits.
    share = create_key(store, SITE, SHARE)
    answer = client.post("/api/v2/query", headers={"Authorization": f"Bearer {share}"}, json={
        "site_id": SITE, "date_range": [DAY.isoformat()] * 2,
        "metrics": ["scroll_depth", "time_on_page"], "filters": [["is", "event:page", ["/blog"]]]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["results"] == [{"dimensions": [], "metrics": [None, None]}]

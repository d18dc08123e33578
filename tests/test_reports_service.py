"""Each app's reports: its clock decides "today" and "now", and its caches are its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.reports.auth import API_KEY, SHARE, create_key
from collector.reports.context import CONTEXT_SECONDS, SiteContexts
from collector.reports.dates import days_range
from collector.reports.sampling import REMEMBER_SECONDS, Sampler, SamplingPolicy
from collector.reports.thresholds import set_thresholds
from collector.storage import Store
from tests.conftest import app_settings, running_app
from tests.reporting_data import SITE, at, day, make_event, store_events

PAGES = {"site_id": SITE, "date_range": [day(0).isoformat(), day(2).isoformat()],
         "metrics": ["visitors"], "dimensions": ["event:page"]}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, moment: datetime) -> None:
        self.now = moment.timestamp()

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module", autouse=True)
def traffic(store: Store) -> Iterator[None]:
    # Day 0: visitors 1 and 2; day 1: visitors 3 and 4 (4 only in the morning); day 2: 5.
    store_events(store, [
        make_event(at("10:00"), 1, "/"), make_event(at("11:00"), 2, "/pricing"),
        make_event(at("08:00", 1), 4, "/"), make_event(at("11:58", 1), 3, "/"),
        make_event(at("11:59", 1), 3, "/pricing"), make_event(at("10:00", 2), 5, "/"),
    ])
    yield


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


@contextmanager
def sampling_app(store: Store, engine_url: str, policy: SamplingPolicy) -> Iterator[TestClient]:
    """A running app whose reports sample by ``policy``."""
    with TestClient(create_app(app_settings(engine_url), store, sampling=policy)) as client:
        yield client


def noon(day_offset: int) -> datetime:
    return datetime.fromtimestamp(at("12:00", day_offset) / 1000, UTC)


def query(client: TestClient, key: str, body: dict[str, Any]) -> Any:
    response = client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    return response.json()


def visitors(client: TestClient, key: str, date_range: str) -> int:
    body = {"site_id": SITE, "date_range": date_range, "metrics": ["visitors"]}
    return int(query(client, key, body)["results"][0]["metrics"][0])


def test_today_is_the_day_of_the_apps_clock(store: Store, engine_url: str, key: str) -> None:
    with running_app(store, engine_url, clock=Clock(noon(1))) as client:
        assert visitors(client, key, "day") == 2  # visitors 3 and 4, not day 2's visitor 5
        assert visitors(client, key, "7d") == 4
        echoed = query(client, key, {"site_id": SITE, "date_range": "day",
                                     "metrics": ["visitors"]})["query"]["date_range"]
        assert echoed[0].startswith(day(1).isoformat())
    with running_app(store, engine_url, clock=Clock(noon(2))) as client:
        assert visitors(client, key, "day") == 1


def test_realtime_counts_the_five_minutes_before_the_apps_clock(store: Store, engine_url: str,
                                                                 key: str) -> None:
    with running_app(store, engine_url, clock=Clock(noon(1))) as client:
        response = client.get(f"/api/v1/stats/realtime/visitors?site_id={SITE}",
                              headers={"Authorization": f"Bearer {key}"})
    # Visitor 3 (11:58, 11:59); not visitor 4 from the morning, nor visitor 5 the day after.
    assert response.status_code == 200 and response.json() == 1


def test_realtime_counts_an_event_of_the_current_second(store: Store, engine_url: str) -> None:
    site = "this-second.example"
    store_events(store, [make_event(at("12:00", 1) + 400, 6, site=site)])
    clock = Clock(noon(1))
    clock.now += 0.9  # the same second as the event, 500 ms after it
    with running_app(store, engine_url, clock=clock) as client:
        response = client.get(f"/api/v1/stats/realtime/visitors?site_id={site}",
                              headers={"Authorization": f"Bearer {create_key(store, site)}"})
    assert response.status_code == 200 and response.json() == 1


def test_two_apps_do_not_share_site_settings(store: Store, engine_url: str, key: str) -> None:
    with running_app(store, engine_url) as first, running_app(store, engine_url) as second:
        pages = [row["dimensions"] for row in query(first, key, PAGES)["results"]]
        assert pages == [["/"], ["/pricing"]]
        # As `collector keys threshold` in another process would: no app is told.
        set_thresholds(store, SITE, k=1000, public_k=1000)
        try:
            assert [row["dimensions"] for row in query(first, key, PAGES)["results"]] == pages
            assert [row["dimensions"] for row in query(second, key, PAGES)["results"]] \
                == [["(other)"]]
        finally:
            set_thresholds(store, SITE, k=1, public_k=5)


def test_each_app_samples_by_its_own_policy_and_memory(store: Store, engine_url: str,
                                                       key: str) -> None:
    period = days_range(day(0), day(2), "UTC")
    visits = int(store.rows(
        "SELECT sum(visits) FROM visits_rollup WHERE site = {site:String} AND dimension = '' "
        "AND hour >= {start:DateTime} AND hour < {end:DateTime}",
        {"site": SITE, "start": period.start, "end": period.end})[0][0])
    # Exact up to today's visits: one more visit tips the range into the 1/16 sample.
    policy = SamplingPolicy(exact_visitors_up_to_visits=visits)
    with sampling_app(store, engine_url, policy) as first, \
            sampling_app(store, engine_url, policy) as second:
        assert query(first, key, PAGES)["meta"]["source"] == "raw"
        store_events(store, [make_event(at("15:00", 2), 6, "/")])
        # The first app remembers the range's size; the second counts it afresh.
        assert query(first, key, PAGES)["meta"]["source"] == "raw"
        meta = query(second, key, PAGES)["meta"]
        assert meta["source"] == "rollup" and meta["visitors_sample_percent"] == 6.25
    with running_app(store, engine_url) as default:
        assert query(default, key, PAGES)["meta"]["source"] == "raw"


def test_range_sizes_are_remembered_for_a_while_of_the_samplers_clock(store: Store) -> None:
    clock = Clock(noon(3))
    # Exact with no visit, 1/16 with one, 1/256 above: each new visit changes the answer.
    sampler = Sampler(SamplingPolicy(exact_visitors_up_to_visits=0, sixteenth_up_to_visits=1),
                      clock)
    later = days_range(day(3), day(3), "UTC")  # no traffic yet
    assert sampler.visitor_sample(store, SITE, later) == 1
    store_events(store, [make_event(at("10:00", 3), 7, "/")])
    assert sampler.visitor_sample(store, SITE, later) == 1  # remembered
    clock.now += REMEMBER_SECONDS
    assert sampler.visitor_sample(store, SITE, later) == 16
    store_events(store, [make_event(at("11:00", 3), 8, "/")])
    clock.now -= 1  # a clock set back does not keep a stale size forever
    assert sampler.visitor_sample(store, SITE, later) == 256


def test_site_settings_expire_by_the_given_clock_and_on_forget(store: Store) -> None:
    clock = Clock(datetime.now(UTC))
    contexts = SiteContexts(store, clock)
    assert contexts.for_site(SITE, API_KEY).k == 1
    set_thresholds(store, SITE, k=3, public_k=7)
    try:
        assert contexts.for_site(SITE, API_KEY).k == 1
        clock.now += CONTEXT_SECONDS
        assert contexts.for_site(SITE, API_KEY).k == 3
        assert contexts.for_site(SITE, SHARE).k == 7
        set_thresholds(store, SITE, k=2, public_k=7)
        contexts.forget()
        assert contexts.for_site(SITE, API_KEY).k == 2
    finally:
        set_thresholds(store, SITE, k=1, public_k=5)

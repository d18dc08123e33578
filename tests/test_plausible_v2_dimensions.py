"""Stats API v2 dimensions and labels as Plausible answers them (docs/plausible.md, "Stats
API v2: dimensions and labels").

Our own cases, derived from the behaviour Plausible's query tests describe: the ``time``
dimension's bucket chosen from the range, weeks labelled by a range starting mid-week,
place names, blank labels, custom properties a visit lacks, and browser, OS and device
names as Plausible's user-agent parser gives them. Traffic goes in as ingest stores it:
``tests.reporting_data`` for visits with given places and tags, ``POST /api/event`` for
user agents and host names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.reports.auth import create_key
from collector.reports.builder import SiteContext
from collector.reports.dates import bucket_labels, days_range, moment_range, time_bucket
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.reports.sampling import Sampler
from collector.storage import Store
from tests.conftest import flush, running_app
from tests.reporting_data import DAY0, GOOGLE, SITE, at, day, make_event, store_events
from tests.user_agents import BROWSERS

# A Sunday in the recent past, so that a range from it starts mid-week (Monday weeks).
SUNDAY = DAY0 - timedelta(days=(DAY0.weekday() + 1) % 7)
HOSTS_SITE = "hosts.test"
AGENTS_SITE = "agents.test"


def _on(offset: int, clock: str = "10:00") -> int:
    """Milliseconds of ``clock`` UTC, ``offset`` days after SUNDAY."""
    return at(clock, (SUNDAY - DAY0).days + offset)


def _events() -> list[Any]:
    def visit(visitor: int, moment: int, page: str = "/", **client: Any) -> Any:
        return make_event(moment, visitor, page, **client)

    return [
        # Weeks: Sunday itself, then the Friday and Sunday of the next week, and a Thursday.
        visit(1, _on(0)), visit(2, _on(12)), visit(3, _on(14)), visit(4, _on(18)),
        # Places, by the codes ingest stores (Plausible's own examples: DE-BE, EE-37).
        visit(5, at("09:00", 30), country="DE", region="DE-BE", city="Berlin"),
        visit(6, at("09:05", 30), country="EE", region="EE-37", city="Tallinn"),
        visit(7, at("09:10", 30), country="EE", region="EE-37", city="Tallinn"),
        # A flat database stores a region by its name (collector.enrich.geo).
        visit(8, at("09:15", 30), country="GB", region="GB-England", city="London"),
        visit(9, at("09:20", 30), country="", region="", city=""),
        # Blanks: no referrer, tag or client attribute on the third visit.
        visit(10, at("11:00", 31), "/?utm_medium=Search&utm_campaign=ads", referrer=GOOGLE,
              os="Mac", os_version="14", browser="Chrome", device="Mobile"),
        visit(11, at("11:05", 31), "/?utm_medium=Search&utm_campaign=ads", referrer=GOOGLE,
              os="Mac", os_version="14", browser="Chrome", device="Mobile"),
        visit(12, at("11:10", 31), "/?utm_medium=social&utm_campaign=profile",
              referrer="https://t.co/x", os="Windows", os_version="11", browser="Safari",
              device="Desktop"),
        visit(13, at("11:15", 31), os="", os_version="14", browser="", browser_version="",
              device=""),
        # Custom properties: one event has the author, one has another prop, one none.
        make_event(at("12:00", 32), 14, name="Read", prop_keys=["author"],
                   prop_values=["uku"]),
        make_event(at("12:05", 32), 15, name="Read", prop_keys=["topic"],
                   prop_values=["geo"]),
        make_event(at("12:10", 32), 16, name="Read"),
    ]


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    """The app, asking about SITE with a key of its own unless a request says otherwise."""
    store_events(store, _events())
    with running_app(store, engine_url) as running:
        running.headers["Authorization"] = f"Bearer {create_key(store, SITE)}"
        yield running


def query(client: TestClient, **body: Any) -> Any:
    response = client.post("/api/v2/query", json={"site_id": SITE, "metrics": ["visitors"],
                                                  **body})
    assert response.status_code == 200, response.text
    return response.json()


def by_value(body: Any) -> dict[Any, Any]:
    return {tuple(row["dimensions"]) if len(row["dimensions"]) > 1 else row["dimensions"][0]:
            row["metrics"][0] for row in body["results"]}


def _days(first_offset: int, last_offset: int) -> list[str]:
    return [day(first_offset).isoformat(), day(last_offset).isoformat()]


# --- time -------------------------------------------------------------------------------

@pytest.mark.parametrize(("days", "bucket"), [
    (1, "time:hour"), (2, "time:hour"), (3, "time:day"), (7, "time:day"), (30, "time:day"),
    (41, "time:day"), (42, "time:week"), (182, "time:week"), (371, "time:week"),
    (372, "time:month"), (731, "time:month"),
])
def test_time_takes_the_bucket_plausible_picks_from_the_range(days: int, bucket: str) -> None:
    period = days_range(SUNDAY, SUNDAY + timedelta(days=days - 1), "Europe/Berlin")
    assert time_bucket(period) == bucket


def test_the_last_24_hours_are_hours() -> None:
    now = datetime(2026, 3, 29, 12, 30, tzinfo=UTC)  # a DST change in Berlin
    assert time_bucket(moment_range(now - timedelta(hours=24), now, "Europe/Berlin")) \
        == "time:hour"


def test_time_over_a_week_is_days_with_their_labels(client: TestClient) -> None:
    first = (SUNDAY - DAY0).days
    body = query(client, date_range=_days(first + 12, first + 18), dimensions=["time"],
                 include={"time_labels": True})
    assert body["results"] == [
        {"dimensions": [day(first + 12).isoformat()], "metrics": [1]},
        {"dimensions": [day(first + 14).isoformat()], "metrics": [1]},
        {"dimensions": [day(first + 18).isoformat()], "metrics": [1]}]
    assert body["meta"]["time_labels"] == [day(first + offset).isoformat()
                                           for offset in range(12, 19)]


def test_time_over_one_day_is_hours(client: TestClient) -> None:
    body = query(client, date_range=_days(30, 30), dimensions=["time"],
                 include={"time_labels": True})
    assert by_value(body) == {f"{day(30).isoformat()} 09:00:00": 5}
    assert len(body["meta"]["time_labels"]) == 24


def test_time_can_order_the_rows(client: TestClient) -> None:
    first = (SUNDAY - DAY0).days
    body = query(client, date_range=_days(first, first + 18), dimensions=["time"],
                 metrics=["pageviews"], order_by=[["pageviews", "desc"], ["time", "desc"]])
    assert [row["dimensions"][0] for row in body["results"]] == [
        day(first + offset).isoformat() for offset in (18, 14, 12, 0)]


def test_a_range_starting_mid_week_labels_its_first_week_by_its_first_day(
        client: TestClient) -> None:
    first = (SUNDAY - DAY0).days
    body = query(client, date_range=_days(first, first + 18), dimensions=["time:week"],
                 include={"time_labels": True})
    assert body["results"] == [
        {"dimensions": [day(first).isoformat()], "metrics": [1]},
        {"dimensions": [day(first + 8).isoformat()], "metrics": [2]},
        {"dimensions": [day(first + 15).isoformat()], "metrics": [1]}]
    assert body["meta"]["time_labels"] == [day(first + offset).isoformat()
                                           for offset in (0, 1, 8, 15)]


def test_months_keep_their_first_day_whatever_the_range_starts_on() -> None:
    period = days_range(SUNDAY.replace(day=15), SUNDAY.replace(day=15) + timedelta(days=40),
                        "UTC")
    labels = bucket_labels("time:month", period, "UTC")
    assert labels[0] == SUNDAY.replace(day=1).isoformat()
    assert all(label.endswith("-01") for label in labels) and len(labels) == 2


# --- place names ------------------------------------------------------------------------

@pytest.mark.parametrize(("dimension", "expected"), [
    ("visit:country_name", {"Estonia": 2, "Germany": 1, "United Kingdom": 1, "": 1}),
    ("visit:region_name", {"Harjumaa": 2, "Berlin": 1, "England": 1, "": 1}),
    ("visit:city_name", {"Tallinn": 2, "Berlin": 1, "London": 1, "": 1}),
])
def test_places_by_name(client: TestClient, dimension: str,
                        expected: dict[str, int]) -> None:
    assert by_value(query(client, date_range=_days(30, 30),
                          dimensions=[dimension])) == expected


def test_places_are_filtered_by_name(client: TestClient) -> None:
    def visitors(*filters: Any) -> Any:
        return query(client, date_range=_days(30, 30),
                     filters=list(filters))["results"][0]["metrics"][0]

    assert visitors(["is", "visit:country_name", ["Estonia"]]) == 2
    assert visitors(["is_not", "visit:country_name", ["Estonia"]]) == 3
    assert visitors(["contains", "visit:region_name", ["Harju", "Engl"]]) == 3
    assert visitors(["is", "visit:city_name", ["Berlin"]]) == 1


def test_place_names_from_the_rollup_too(store: Store, client: TestClient,
                                         rollups_in_use: Sampler) -> None:
    spec = parse_query({"site_id": SITE, "metrics": ["visitors"], "date_range": _days(30, 30),
                        "dimensions": ["visit:country_name"]})
    report = run_report(store, spec, SiteContext(SITE), datetime.now(UTC),
                        sampler=rollups_in_use)
    assert report.meta["source"] == "rollup" and report.results
    assert {row["dimensions"][0] for row in report.results} <= {
        "Estonia", "Germany", "United Kingdom", ""}


# --- blank labels -----------------------------------------------------------------------

@pytest.mark.parametrize(("dimension", "expected"), [
    ("visit:source", {"Google": 2, "X": 1, "Direct / None": 1}),
    ("visit:referrer", {"google.com": 2, "t.co/x": 1, "Direct / None": 1}),
    ("visit:utm_medium", {"Search": 2, "social": 1, "(not set)": 1}),
    ("visit:utm_campaign", {"ads": 2, "profile": 1, "(not set)": 1}),
    ("visit:utm_source", {"(not set)": 4}),
    ("visit:utm_content", {"(not set)": 4}),
    ("visit:utm_term", {"(not set)": 4}),
    ("visit:os", {"Mac": 2, "Windows": 1, "(not set)": 1}),
    ("visit:browser", {"Chrome": 2, "Safari": 1, "(not set)": 1}),
    ("visit:device", {"Mobile": 2, "Desktop": 1, "(not set)": 1}),
])
def test_blank_values_are_labelled_as_plausible_labels_them(
        client: TestClient, dimension: str, expected: dict[str, int]) -> None:
    assert by_value(query(client, date_range=_days(31, 31),
                          dimensions=[dimension])) == expected


def test_a_system_without_a_name_keeps_its_version(client: TestClient) -> None:
    body = query(client, date_range=_days(31, 31), dimensions=["visit:os", "visit:os_version"])
    assert by_value(body) == {("Mac", "14"): 2, ("Windows", "11"): 1, ("(not set)", "14"): 1}
    versions = query(client, date_range=_days(31, 31),
                     dimensions=["visit:browser", "visit:browser_version"])
    assert by_value(versions)[("(not set)", "(not set)")] == 1


def test_a_blank_label_can_be_filtered_on(client: TestClient) -> None:
    body = query(client, date_range=_days(31, 31),
                 filters=[["is", "visit:source", ["Direct / None"]]])
    assert body["results"][0]["metrics"] == [1]


def test_a_missing_custom_property_is_none_and_can_be_filtered(client: TestClient) -> None:
    body = query(client, date_range=_days(32, 32), dimensions=["event:props:author"])
    assert by_value(body) == {"(none)": 2, "uku": 1}

    def visitors(*filters: Any) -> Any:
        return query(client, date_range=_days(32, 32), metrics=["events"],
                     filters=list(filters))["results"][0]["metrics"][0]

    assert visitors(["is", "event:props:author", ["(none)"]]) == 2
    assert visitors(["is", "event:props:author", ["(none)", "uku"]]) == 3
    assert visitors(["is_not", "event:props:author", ["(none)"]]) == 1


# --- names from the user agent, and host names, through ingest ---------------------------

def _ingest(client: TestClient, agent: str, url: str, site: str) -> None:
    response = client.post("/api/event", content=json.dumps(
        {"n": "pageview", "u": url, "d": site}),
        headers={"User-Agent": agent, "Content-Type": "text/plain"})
    assert response.status_code == 202 and "x-collector-dropped" not in response.headers


def _agent(fragment: str) -> str:
    return next(agent for agent, _ in BROWSERS if fragment in agent)


@pytest.fixture(scope="module")
def ingested(client: TestClient) -> TestClient:
    for fragment in ("Edg/120", "Version/17.2 Safari", "X11; Linux x86_64) AppleWebKit",
                     "iPhone OS 17_4"):
        _ingest(client, _agent(fragment), f"https://{AGENTS_SITE}/", AGENTS_SITE)
    # One visit entering on the blog and going on to the shop; one entering on the shop.
    blog_reader, shopper = _agent("Edg/120"), _agent("Version/17.2 Safari")
    _ingest(client, blog_reader, f"https://blog.{HOSTS_SITE}/post", HOSTS_SITE)
    _ingest(client, blog_reader, f"https://shop.{HOSTS_SITE}/cart", HOSTS_SITE)
    _ingest(client, shopper, f"https://shop.{HOSTS_SITE}/", HOSTS_SITE)
    flush(client)
    return client


def _site_query(client: TestClient, store: Store, site: str, **body: Any) -> Any:
    response = client.post("/api/v2/query", json={"site_id": site, "metrics": ["visitors"],
                                                  "date_range": "day", **body},
                           headers={"Authorization": f"Bearer {create_key(store, site)}"})
    assert response.status_code == 200, response.text
    return by_value(response.json())


@pytest.mark.parametrize(("dimension", "expected"), [
    ("visit:browser", {"Microsoft Edge": 1, "Safari": 2, "Chrome": 1}),
    ("visit:os", {"Windows": 1, "Mac": 1, "GNU/Linux": 1, "iOS": 1}),
    ("visit:device", {"Desktop": 3, "Mobile": 1}),
])
def test_client_names_are_plausibles(ingested: TestClient, store: Store, dimension: str,
                                     expected: dict[str, int]) -> None:
    assert _site_query(ingested, store, AGENTS_SITE, dimensions=[dimension]) == expected


def test_versions_are_major_and_minor(ingested: TestClient, store: Store) -> None:
    versions = _site_query(ingested, store, AGENTS_SITE,
                           dimensions=["visit:browser", "visit:browser_version"])
    assert versions[("Microsoft Edge", "120.0")] == 1 and versions[("Safari", "17.2")] == 1
    systems = _site_query(ingested, store, AGENTS_SITE,
                          dimensions=["visit:os", "visit:os_version"])
    assert systems[("Mac", "10.15")] == 1 and systems[("Windows", "10")] == 1


def test_entry_page_hostname(ingested: TestClient, store: Store) -> None:
    assert _site_query(ingested, store, HOSTS_SITE,
                       dimensions=["visit:entry_page_hostname"]) == {
        f"blog.{HOSTS_SITE}": 1, f"shop.{HOSTS_SITE}": 1}
    # The pages of the visits that entered on the blog, on whichever host they were.
    assert _site_query(ingested, store, HOSTS_SITE, metrics=["pageviews"],
                       dimensions=["event:hostname"],
                       filters=[["is", "visit:entry_page_hostname", [f"blog.{HOSTS_SITE}"]]]) \
        == {f"blog.{HOSTS_SITE}": 1, f"shop.{HOSTS_SITE}": 1}


def test_exit_page_hostname(ingested: TestClient, store: Store) -> None:
    # The blog reader left from the shop, as the shopper did: the exit host follows the
    # visit's last page, where the entry host stays its first.
    assert _site_query(ingested, store, HOSTS_SITE,
                       dimensions=["visit:exit_page_hostname"]) == {f"shop.{HOSTS_SITE}": 2}
    assert _site_query(ingested, store, HOSTS_SITE, metrics=["visits"],
                       dimensions=["visit:entry_page_hostname"],
                       filters=[["is", "visit:exit_page_hostname", [f"shop.{HOSTS_SITE}"]]]) \
        == {f"blog.{HOSTS_SITE}": 1, f"shop.{HOSTS_SITE}": 1}
    assert _site_query(ingested, store, HOSTS_SITE, dimensions=["visit:exit_page_hostname"],
                       filters=[["is", "visit:exit_page_hostname", [f"blog.{HOSTS_SITE}"]]]) \
        == {}

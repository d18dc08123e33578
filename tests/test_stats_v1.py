"""Stats API v1 (``/api/v1/stats/aggregate``, ``/timeseries``, ``/breakdown``, realtime)
driven with the request shapes of Plausible's v1 clients.

The traffic goes through ingest (``POST /api/event``) on an app whose clock is moved to
each event's moment; visitors are told apart by their forwarded address (the test
client is a trusted proxy), which also gives their country. Every expected figure is
counted by hand from the visits listed below; only labels (sources, browsers) are read
from the code that derives them, which other tests cover.

    D-4  V0  FR  /                          direct, bounce
    D-1  V7  FR  /                          direct, bounce
    D    V1  FR  / (Google) 10:00, /pricing 10:02, Signup {plan: pro} 10:05     300 s
    D    V2  FR  /blog/a (t.co) 11:00                                           bounce
    D    V3  DE  / 12:00, /blog/b 12:10 (600 s); then / 13:00, a second visit   bounce
    D    V4  US  /pricing?utm_source=newsletter 14:00, Download (not interactive)
                 14:01                                                  bounce, 60 s
    D+1  V5  DE  / (Google) 09:00, Signup {plan: free} 09:01                    60 s
    D+1  V6  FR  /blog/a (t.co) 10:00                                           bounce
    D+1  V9  --  /blog/b 11:00, / 11:03 (no country: an address the database lacks) 180 s

Unique visitors over several days are a sum of daily uniques (the visitor hash changes
every day), so D..D+1 has 7 visitors. The reports' "today" is D+1.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.reports.auth import create_key
from collector.reports.goals import add_goal
from collector.reports.v1_filters import v2_filters, wildcard_pattern
from collector.sites import add_site
from collector.storage import Store
from tests.conftest import flush, running_app
from tests.mmdb_files import write_mmdb
from tests.reporting_data import ARRIVALS, DAY0
from tests.user_agents import BROWSERS, CHROME_WINDOWS

SITE = "v1.test"
PROXY = "203.0.113.9"  # the test client's address, trusted to forward the visitor's
D = DAY0


def day(offset: int) -> date:
    return D + timedelta(days=offset)


def agent(fragment: str) -> tuple[str, tuple[str, str, str, str, str]]:
    """A real user agent containing ``fragment``, and what it is classified as."""
    return next((ua, labels) for ua, labels in BROWSERS if fragment in ua)


CHROME = agent(CHROME_WINDOWS)
FIREFOX = agent("Windows NT 10.0; Win64; x64; rv:121.0")
SAFARI = agent("Intel Mac OS X 10_15_7) AppleWebKit/605.1.15")
ANDROID = agent("Android 14; Pixel 8")
GOOGLE = "https://www.google.com/"
TCO = "https://t.co/x"
NEWSLETTER = "/pricing?utm_source=newsletter&utm_medium=email"
VISITORS = {  # address, browser
    "V0": ("198.51.100.10", CHROME), "V7": ("198.51.100.7", CHROME),
    "V1": ("198.51.100.1", CHROME), "V2": ("198.51.100.2", FIREFOX),
    "V3": ("198.51.100.130", SAFARI), "V4": ("192.0.2.4", CHROME),
    "V5": ("198.51.100.131", ANDROID), "V6": ("198.51.100.2", FIREFOX),
    "V9": ("203.0.113.77", CHROME),
}
EVENTS: list[tuple[int, str, str, dict[str, Any]]] = [  # day, clock, visitor, body
    (-4, "10:00", "V0", {"u": "/"}),
    (-1, "10:00", "V7", {"u": "/"}),
    (0, "10:00", "V1", {"u": "/", "r": GOOGLE}),
    (0, "10:02", "V1", {"u": "/pricing"}),
    (0, "10:05", "V1", {"u": "/pricing", "n": "Signup", "p": {"plan": "pro"}}),
    (0, "11:00", "V2", {"u": "/blog/a", "r": TCO}),
    (0, "12:00", "V3", {"u": "/"}),
    (0, "12:10", "V3", {"u": "/blog/b"}),
    (0, "13:00", "V3", {"u": "/"}),
    (0, "14:00", "V4", {"u": NEWSLETTER}),
    (0, "14:01", "V4", {"u": "/pricing", "n": "Download", "i": False,
                        "p": {"file": "guide.pdf"}}),
    (1, "09:00", "V5", {"u": "/", "r": GOOGLE}),
    (1, "09:01", "V5", {"u": "/", "n": "Signup", "p": {"plan": "free"}}),
    (1, "10:00", "V6", {"u": "/blog/a", "r": TCO}),
    (1, "11:00", "V9", {"u": "/blog/b"}),
    (1, "11:03", "V9", {"u": "/"}),
]
DAILY_VISITORS = {day(-4): 1, day(-1): 1, day(0): 4, day(1): 3}
TODAY_NOON = datetime.combine(day(1), time(12), UTC).timestamp()
TWO_DAYS = {"period": "custom", "date": f"{day(0)},{day(1)}"}


def source(referrer: str | None, path: str = "/") -> str:
    """The visit source ingest derives (the dimension shows an empty one as Direct / None)."""
    found = ARRIVALS.read(f"https://{SITE}{path}", referrer).event_fields()["referrer_source"]
    return str(found) or "Direct / None"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str, clock: Clock,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    add_site(store, SITE)
    add_goal(store, SITE, "event", "Signup")
    add_goal(store, SITE, "page", "/pricing")
    geo = write_mmdb(tmp_path_factory.mktemp("geo") / "countries.mmdb", {
        "198.51.100.0/25": {"country": {"iso_code": "FR"}},
        "198.51.100.128/25": {"country": {"iso_code": "DE"}},
        "192.0.2.0/24": {"country": {"iso_code": "US"}},
    }, kind="DBIP-Country-Lite")
    with running_app(store, engine_url, clock=clock, geoip_db=geo,
                     trusted_proxies=(ipaddress.ip_network(f"{PROXY}/32"),)) as running:
        for offset, moment, visitor, body in EVENTS:
            clock.now = datetime.combine(day(offset), time.fromisoformat(moment),
                                         UTC).timestamp()
            send(running, visitor, body)
        flush(running)
        clock.now = TODAY_NOON
        yield running


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


def send(client: TestClient, visitor: str, body: dict[str, Any]) -> None:
    address, (user_agent, _) = VISITORS[visitor]
    event = {"n": "pageview", "d": SITE, **body, "u": f"https://{SITE}{body['u']}"}
    response = client.post("/api/event", content=json.dumps(event), headers={
        "User-Agent": user_agent, "X-Forwarded-For": address, "Content-Type": "text/plain"})
    assert response.status_code == 202 and "x-collector-dropped" not in response.headers


def get(client: TestClient, token: str | None, endpoint: str, **params: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(f"/api/v1/stats/{endpoint}", params={"site_id": SITE, **params},
                      headers=headers)


def results(client: TestClient, token: str, endpoint: str, **params: Any) -> Any:
    response = get(client, token, endpoint, **params)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()["results"]


# --- aggregate ---------------------------------------------------------------------------


def test_aggregate_of_one_day(client: TestClient, key: str) -> None:
    found = results(client, key, "aggregate", period="day", date=str(day(0)),
                    metrics="visitors,visits,pageviews,views_per_visit,bounce_rate,"
                            "visit_duration,events")
    # 5 visits (V3 has two), 3 of them bounces; 300 + 600 + 60 s over 5 visits.
    assert found == {"visitors": {"value": 4}, "visits": {"value": 5},
                     "pageviews": {"value": 7}, "views_per_visit": {"value": 1.4},
                     "bounce_rate": {"value": 60}, "visit_duration": {"value": 192},
                     "events": {"value": 9}}


def test_aggregate_defaults_to_visitors_of_the_30_days_before_today(client: TestClient,
                                                                    key: str) -> None:
    # Today (D+1) is not part of 30d: V0, V7 and D's four.
    assert results(client, key, "aggregate") == {"visitors": {"value": 6}}
    assert results(client, key, "aggregate", period="30d", date=str(day(2))) == \
        {"visitors": {"value": 9}}


def test_aggregate_compared_with_the_previous_period(client: TestClient, key: str) -> None:
    found = results(client, key, "aggregate", period="day", date=str(day(0)),
                    metrics="visitors,pageviews,bounce_rate,visit_duration",
                    compare="previous_period")
    # D-1: V7 alone, one bouncing pageview.
    assert found == {
        "visitors": {"value": 4, "comparison_value": 1, "change": 300},
        "pageviews": {"value": 7, "comparison_value": 1, "change": 600},
        "bounce_rate": {"value": 60, "comparison_value": 100, "change": -40},
        "visit_duration": {"value": 192, "comparison_value": 0, "change": 100},
    }


def test_visit_metrics_under_a_page_filter_are_those_of_visits_entering_there(
        client: TestClient, key: str) -> None:
    found = results(client, key, "aggregate", **TWO_DAYS, filters="event:page==/blog/*",
                    metrics="visitors,bounce_rate,visit_duration")
    # Saw a blog page: V2 V6 (entered there, bounced), V3 (entered on /), V9 (entered
    # there, 180 s). Plausible counts the visits entering there: 2 bounces of 3, 60 s.
    assert found == {"visitors": {"value": 4}, "bounce_rate": {"value": 67},
                     "visit_duration": {"value": 60}}


def test_time_on_page_under_a_page_filter(client: TestClient, key: str) -> None:
    # No engagement event was sent: nobody reported a time (Plausible's null too).
    found = results(client, key, "aggregate", **TWO_DAYS, metrics="visitors,time_on_page",
                    filters="event:page==/")
    assert found == {"visitors": {"value": 4}, "time_on_page": {"value": None}}


def test_a_period_running_past_today_is_compared_up_to_today(client: TestClient,
                                                             key: str) -> None:
    # D..D+5, today D+1: the two days D..D+1 against D-2..D-1 (V7), not D-6..D-1 (V0, V7).
    found = results(client, key, "aggregate", period="custom", date=f"{day(0)},{day(5)}",
                    compare="previous_period")
    assert found == {"visitors": {"value": 7, "comparison_value": 1, "change": 600}}


def test_conversion_rate_of_a_goal(client: TestClient, key: str) -> None:
    found = results(client, key, "aggregate", **TWO_DAYS, metrics="visitors,conversion_rate",
                    filters="event:goal==Signup")
    assert found == {"visitors": {"value": 2}, "conversion_rate": {"value": 28.6}}


@pytest.mark.parametrize(("filters", "visitors"), [
    ("visit:country==FR|DE", 5),  # V1 V2 V6, V3 V5
    ("visit:country!=FR", 4),  # V3 V5, V4, V9 (no country)
    ("event:page==/blog/**", 4),  # V2 V6 on /blog/a, V3 V9 on /blog/b
    ("event:page==/blog*", 4),
    ("event:page!=/blog/*", 5),  # had an event elsewhere: V1 V3 V4 V5 V9
    ("event:page == /pricing ; visit:source==Google", 1),  # V1
    (f"visit:source=={source(None)}", 2),  # V3, V9 (V4's utm_source is its source)
    ("event:props:plan==pro|free", 2),
    ("event:goal==Signup|Visit /pricing", 3),  # V1 V5, V1 V4
    ("event:goal!=Signup", 7),  # every visitor had an event completing no Signup
    ('{"page": "~blog"}', 4),
    ('{"page": "!~blog"}', 5),
    ('{"props": {"plan": "pro"}}', 1),
    ('[["contains", "event:page", ["blog"]]]', 4),
    ('[["or", [["is", "visit:country", ["US"]], ["is", "event:name", ["Signup"]]]]]', 3),
])
def test_filters_in_each_form_plausible_reads(client: TestClient, key: str, filters: str,
                                              visitors: int) -> None:
    found = results(client, key, "aggregate", **TWO_DAYS, filters=filters)
    assert found == {"visitors": {"value": visitors}}


def test_the_filter_expression_becomes_v2_filters() -> None:
    assert v2_filters(r"visit:utm_campaign==spring\|summer|autumn;visit:browser!=Chrome") == [
        ["is", "visit:utm_campaign", ["spring|summer", "autumn"]],
        ["is_not", "visit:browser", ["Chrome"]]]
    assert v2_filters("event:page==/blog/**|/docs/*") == [
        ["matches", "event:page", ["^/blog/.*$", "^/docs/.*$"]]]
    assert v2_filters("event:goal==Visit /blog**") == [["is", "event:goal", ["Visit /blog**"]]]
    assert v2_filters("event:props:plan==(none)") == [
        ["is", "event:props:plan", ["(none)", ""]]]
    assert v2_filters(" ; ") == [] and v2_filters(None) == []
    assert wildcard_pattern("a.com/(x)*") == r"^a\.com/\(x\).*$"


# --- timeseries ----------------------------------------------------------------------------


def test_timeseries_by_day_fills_every_day(client: TestClient, key: str) -> None:
    found = results(client, key, "timeseries", period="7d", date=str(day(2)))
    assert found == [{"date": str(day(offset)), "visitors": DAILY_VISITORS.get(day(offset), 0)}
                     for offset in range(-5, 2)]
    assert results(client, key, "timeseries", period="7d", date=str(day(2)),
                   interval="date") == found  # the interval's old name


def test_timeseries_of_a_day_is_by_hour(client: TestClient, key: str) -> None:
    found = results(client, key, "timeseries", period="day", date=str(day(0)),
                    metrics="visitors,pageviews,bounce_rate,visit_duration")
    assert [row["date"] for row in found] == [f"{day(0)} {hour:02d}:00:00" for hour in range(24)]
    busy = {10: (1, 2, 0, 300), 11: (1, 1, 100, 0), 12: (1, 2, 0, 600), 13: (1, 1, 100, 0),
            14: (1, 1, 100, 60)}  # visits counted in the hour they start
    for hour, row in enumerate(found):
        visitors, pageviews, bounce_rate, duration = busy.get(hour, (0, 0, 0, None))
        assert row == {"date": row["date"], "visitors": visitors, "pageviews": pageviews,
                       "bounce_rate": bounce_rate, "visit_duration": duration}, hour


def test_timeseries_by_month(client: TestClient, key: str) -> None:
    found = results(client, key, "timeseries", period="6mo", date=str(day(1)))
    months = [date(day(1).year, day(1).month, 1)]
    while len(months) < 6:
        months.insert(0, (months[0] - timedelta(days=1)).replace(day=1))
    assert found == [{"date": str(month), "visitors": sum(
        count for visited, count in DAILY_VISITORS.items() if visited.replace(day=1) == month)}
        for month in months]
    daily = results(client, key, "timeseries", period="6mo", date=str(day(1)), interval="day")
    assert daily[0]["date"] == str(months[0]) and len(daily) > 150


def test_timeseries_conversion_rate_is_each_days_own(client: TestClient, key: str) -> None:
    found = results(client, key, "timeseries", **TWO_DAYS, metrics="visitors,conversion_rate",
                    filters="event:goal==Signup")
    # D: V1 of four visitors; D+1: V5 of three.
    assert found == [{"date": str(day(0)), "visitors": 1, "conversion_rate": 25.0},
                     {"date": str(day(1)), "visitors": 1, "conversion_rate": 33.3}]


# --- breakdown -----------------------------------------------------------------------------


def test_breakdown_by_page_in_plausible_order(client: TestClient, key: str) -> None:
    found = results(client, key, "breakdown", **TWO_DAYS, property="event:page",
                    metrics="visitors,pageviews")
    assert found == [{"page": "/", "visitors": 4, "pageviews": 5},
                     {"page": "/blog/a", "visitors": 2, "pageviews": 2},
                     {"page": "/blog/b", "visitors": 2, "pageviews": 2},
                     {"page": "/pricing", "visitors": 2, "pageviews": 2}]


def test_breakdown_pages(client: TestClient, key: str) -> None:
    pages = [[row["page"] for row in results(client, key, "breakdown", **TWO_DAYS,
                                             property="event:page", limit=2, page=page)]
             for page in (1, 2, 3)]
    assert pages == [["/", "/blog/a"], ["/blog/b", "/pricing"], []]


def test_visit_metrics_of_pages_are_those_of_the_visits_entering_there(client: TestClient,
                                                                      key: str) -> None:
    found = results(client, key, "breakdown", **TWO_DAYS, property="event:page",
                    metrics="visitors,bounce_rate,visit_duration")
    # Entries on /: V1 (300 s), V3 (600 s), V3 again (bounce), V5 (60 s).
    assert found == [
        {"page": "/", "visitors": 4, "bounce_rate": 25, "visit_duration": 240},
        {"page": "/blog/a", "visitors": 2, "bounce_rate": 100, "visit_duration": 0},
        {"page": "/blog/b", "visitors": 2, "bounce_rate": 0, "visit_duration": 180},
        {"page": "/pricing", "visitors": 2, "bounce_rate": 100, "visit_duration": 60}]
    by_bounce_rate = results(client, key, "breakdown", **TWO_DAYS, property="event:page",
                             metrics="bounce_rate", limit=3)
    assert by_bounce_rate == [{"page": "/blog/a", "bounce_rate": 100},
                              {"page": "/pricing", "bounce_rate": 100},
                              {"page": "/", "bounce_rate": 25}]


def test_breakdown_by_source(client: TestClient, key: str) -> None:
    found = results(client, key, "breakdown", **TWO_DAYS, property="visit:source",
                    metrics="visitors,bounce_rate")
    # Direct: V3's two visits (one a bounce) and V9's; V4's source is its utm_source.
    counts = {source(GOOGLE): (2, 0), source(TCO): (2, 100), source(None): (2, 33),
              source(None, NEWSLETTER): (1, 100)}
    assert found == [{"source": name, "visitors": visitors, "bounce_rate": bounce_rate}
                     for name, (visitors, bounce_rate) in sorted(
                         counts.items(), key=lambda item: (-item[1][0], item[0]))]


def test_breakdown_leaves_visits_without_a_country_out(client: TestClient, key: str) -> None:
    found = results(client, key, "breakdown", **TWO_DAYS, property="visit:country")
    assert found == [{"country": "FR", "visitors": 3}, {"country": "DE", "visitors": 2},
                     {"country": "US", "visitors": 1}]  # V9 has none


def test_breakdown_by_version_names_the_browser(client: TestClient, key: str) -> None:
    found = results(client, key, "breakdown", **TWO_DAYS, property="visit:browser_version")
    (chrome, firefox, safari) = (CHROME[1], FIREFOX[1], SAFARI[1])
    assert ANDROID[1][:2] == chrome[:2]  # V5's Chrome is the same version
    assert found == [{"browser": chrome[0], "browser_version": chrome[1], "visitors": 4},
                     {"browser": firefox[0], "browser_version": firefox[1], "visitors": 2},
                     {"browser": safari[0], "browser_version": safari[1], "visitors": 1}]


def test_breakdown_by_custom_property(client: TestClient, key: str) -> None:
    signups = results(client, key, "breakdown", **TWO_DAYS, property="event:props:plan",
                      filters="event:name==Signup")
    assert signups == [{"plan": "free", "visitors": 1}, {"plan": "pro", "visitors": 1}]
    everything = results(client, key, "breakdown", **TWO_DAYS, property="event:props:plan")
    # Every visitor sent an event without the property (V1 and V5 their pageviews).
    assert everything == [{"plan": "(none)", "visitors": 7}, {"plan": "free", "visitors": 1},
                          {"plan": "pro", "visitors": 1}]


def test_breakdown_by_goal_with_conversion_rates(client: TestClient, key: str) -> None:
    found = results(client, key, "breakdown", **TWO_DAYS, property="event:goal",
                    metrics="visitors,events,conversion_rate")
    assert found == [{"goal": "Signup", "visitors": 2, "events": 2, "conversion_rate": 28.6},
                     {"goal": "Visit /pricing", "visitors": 2, "events": 2,
                      "conversion_rate": 28.6}]


def test_conversion_rate_of_each_group(client: TestClient, key: str) -> None:
    found = results(client, key, "breakdown", **TWO_DAYS, property="visit:country",
                    metrics="conversion_rate,visitors", filters="event:goal==Signup")
    # DE: V5 of V3 V5; FR: V1 of V1 V2 V6.
    assert found == [{"country": "DE", "conversion_rate": 50.0, "visitors": 1},
                     {"country": "FR", "conversion_rate": 33.3, "visitors": 1}]


def test_breakdown_compared_with_the_previous_period(client: TestClient, key: str) -> None:
    found = results(client, key, "breakdown", period="day", date=str(day(0)),
                    property="visit:country", compare="previous_period")
    # D-1: V7 from FR; 0 to 1 is a change of 100 as Plausible counts it.
    assert found == [{"country": country, "visitors": now,
                      "comparison": {"visitors": before, "change": {"visitors": 100}}}
                     for country, now, before in (("FR", 2, 1), ("DE", 1, 0), ("US", 1, 0))]


def test_share_links_see_the_public_threshold(client: TestClient, store: Store) -> None:
    share = create_key(store, SITE, kind="share")
    found = results(client, share, "breakdown", **TWO_DAYS, property="event:page")
    # No page has the 5 visitors a share link needs to see it by name.
    assert [row["page"] for row in found] == ["(other)"]


def test_each_share_link_spends_its_own_privacy_budget(client: TestClient,
                                                        store: Store) -> None:
    first, second = (create_key(store, SITE, kind="share") for _ in range(2))
    for token in (first, second):
        results(client, token, "aggregate", **TWO_DAYS, metrics="visitors")
    spenders = {key for (key,) in store.rows("SELECT DISTINCT key_id FROM privacy_spends")}
    assert f"share:{SITE}" not in spenders  # not one pool for every share link of the site
    assert len(spenders) >= 2


# Requests as published integrations send them: a widget's top pages of today, a blog's
# most read articles, a script counting events, the documentation's first example.
@pytest.mark.parametrize(("endpoint", "query", "expected"), [
    ("breakdown", "period=day&property=event:page&limit=5&metrics=visitors",
     [{"page": "/", "visitors": 2}, {"page": "/blog/a", "visitors": 1},
      {"page": "/blog/b", "visitors": 1}]),  # today, D+1: V5 V9 on /
    ("breakdown", "property=event:page&limit=5&period=12mo&filters=event:page%3D%3D/blog/*",
     [{"page": "/blog/a", "visitors": 2}, {"page": "/blog/b", "visitors": 2}]),
    ("breakdown", f"period=30d&date={day(2)}&property=event:name&metrics=events&limit=100",
     [{"name": "pageview", "events": 13}, {"name": "Signup", "events": 2},
      {"name": "Download", "events": 1}]),
    ("aggregate", "period=6mo&metrics=visitors,pageviews,bounce_rate,visit_duration",
     # 10 visits: V0, V7, D's five, D+1's three; 6 bounces; 300 + 600 + 60 + 60 + 180 s.
     {"visitors": {"value": 9}, "pageviews": {"value": 13}, "bounce_rate": {"value": 60},
      "visit_duration": {"value": 120}}),
])
def test_requests_as_integrations_send_them(client: TestClient, key: str, endpoint: str,
                                            query: str, expected: Any) -> None:
    response = client.get(f"/api/v1/stats/{endpoint}?site_id={SITE}&{query}",
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200, response.text
    assert response.json() == {"results": expected}


# --- realtime ------------------------------------------------------------------------------


def test_realtime_visitors(client: TestClient, key: str, clock: Clock) -> None:
    clock.now = datetime.combine(day(1), time(11, 5), UTC).timestamp()
    try:
        response = client.get("/api/v1/stats/realtime/visitors", params={"site_id": SITE},
                              headers={"Authorization": f"Bearer {key}"})
    finally:
        clock.now = TODAY_NOON
    assert response.status_code == 200 and response.json() == 1  # V9, at 11:03


# --- errors --------------------------------------------------------------------------------


def test_keys_are_checked_as_in_v2(client: TestClient, store: Store) -> None:
    for endpoint in ("aggregate", "timeseries", "breakdown"):
        assert get(client, None, endpoint, property="event:page").status_code == 401
        assert get(client, "ck_nothing_here", endpoint).status_code == 401
    other = create_key(store, "other.test")
    response = get(client, other, "aggregate")
    assert response.status_code == 403 and response.json()["field"] == "site_id"


@pytest.mark.parametrize(("endpoint", "params", "field"), [
    ("aggregate", {"site_id": ""}, "site_id"),
    ("aggregate", {"period": "year"}, "period"),
    ("aggregate", {"period": "month", "date": "2021-dkjbAS"}, "date"),
    ("aggregate", {"period": "day", "date": "20210101"}, "date"),
    ("aggregate", {"period": "day", "date": "0001-01-01"}, "date"),
    ("aggregate", {"period": "custom"}, "date"),
    ("aggregate", {"period": "custom", "date": "2021-01-01"}, "date"),
    ("aggregate", {"period": "custom", "date": "2021-02-01,2021-01-01"}, "date"),
    ("aggregate", {"metrics": "pageviews,led_zeppelin"}, "metrics"),
    ("aggregate", {"metrics": "visitors,visitors"}, "metrics"),
    ("aggregate", {"metrics": "scroll_depth"}, "metrics"),
    ("aggregate", {"metrics": "conversion_rate"}, "metrics"),
    ("aggregate", {"metrics": "views_per_visit", "filters": "event:page==/"}, "metrics"),
    ("aggregate", {"metrics": "visit_duration", "filters": "event:name==Signup"}, "metrics"),
    ("aggregate", {"metrics": "time_on_page"}, "metrics"),  # needs a page filter
    ("aggregate", {"metrics": "time_on_page", "filters": "event:page==/;event:goal==Signup"},
     "metrics"),
    ("breakdown", {"property": "visit:source", "metrics": "time_on_page"}, "metrics"),
    ("aggregate", {"filters": "badproperty==bar"}, "filters"),
    ("aggregate", {"filters": "visit:browser"}, "filters"),
    ("aggregate", {"filters": "visit:country==France"}, "filters"),
    ("aggregate", {"filters": "event:goal==Register"}, "filters"),
    ("aggregate", {"filters": '{"colour": "red"}'}, "filters"),
    ("aggregate", {"filters": "[[\"is\""}, "filters"),
    ("timeseries", {"interval": "week"}, "interval"),
    ("breakdown", {}, "property"),
    ("breakdown", {"property": "badproperty"}, "property"),
    ("breakdown", {"property": "event:props:"}, "property"),
    ("breakdown", {"property": "event:name", "metrics": "visitors,bounce_rate"}, "metrics"),
    ("breakdown", {"property": "visit:source", "metrics": "views_per_visit"}, "metrics"),
    ("breakdown", {"property": "event:page", "limit": "1001"}, "limit"),
    ("breakdown", {"property": "event:page", "limit": "bad_limit"}, "limit"),
    ("breakdown", {"property": "event:page", "page": "0"}, "page"),
    ("breakdown", {"property": "event:page", "page": "99999999999"}, "page"),
])
def test_invalid_requests_are_400_naming_the_parameter(client: TestClient, key: str,
                                                       endpoint: str, params: dict[str, str],
                                                       field: str) -> None:
    response = get(client, key, endpoint, **params)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field and response.json()["error"]


def test_what_plausible_ignores_is_ignored(client: TestClient, key: str) -> None:
    plain = results(client, key, "aggregate", **TWO_DAYS)
    assert results(client, key, "aggregate", **TWO_DAYS, property="event:page",
                   with_imported="true", compare="yesterday") == plain
    assert results(client, key, "timeseries", **TWO_DAYS, compare="previous_period") == \
        [{"date": str(day(0)), "visitors": 4}, {"date": str(day(1)), "visitors": 3}]


def test_every_v1_route_is_in_the_openapi_document(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for endpoint in ("aggregate", "timeseries", "breakdown", "realtime/visitors"):
        assert "get" in paths[f"/api/v1/stats/{endpoint}"]

"""Plausible's Events API acceptance rules, one case each, and the privacy rules after them.

Derived from what Plausible's own ingestion does (its request parser and controller
tests): what it answers, and what it stores. Each case sends a body a Plausible client
sends, checks the status, then reads what was stored (the events table or the query
API). Where the collector deliberately differs, the case says so (docs/plausible.md).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.reports.auth import create_key
from collector.reports.goals import EVENT, add_goal
from collector.storage import Store
from tests.conftest import CHROME_UA, flush, running_app

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()
CLIENT_ADDRESS = "203.0.113.9"  # the test client's peer address (tests/conftest.py)
SHOP = "shop.test"
HEADERS = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    add_goal(store, SHOP, EVENT, "Purchase", currency="EUR")
    add_goal(store, SHOP, EVENT, "Subscription", currency="USD")
    add_goal(store, SHOP, EVENT, "Signup")
    with running_app(store, engine_url, clock=lambda: NOON) as running:
        yield running


def send(client: TestClient, body: Any, **headers: str) -> Any:
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/api/event", content=raw, headers={**HEADERS, **headers})


def stored(client: TestClient, store: Store, site: str,
           columns: str = "name, hostname, pathname") -> list[tuple[Any, ...]]:
    flush(client)
    # One clock for the whole module: rows of a site are ordered by name and path.
    return store.rows(f"SELECT {columns} FROM events WHERE site = {{site:String}} "
                      "ORDER BY timestamp, name, pathname", {"site": site})


def accepted(client: TestClient, body: dict[str, Any]) -> None:
    response = send(client, body)
    assert response.status_code == 202, response.text
    assert "x-collector-dropped" not in response.headers


def refused(client: TestClient, body: Any, field: str) -> None:
    response = send(client, body)
    assert response.status_code == 400
    assert response.json()["field"] == field


def report(client: TestClient, store: Store, site: str, **query: Any) -> dict[str, Any]:
    flush(client)
    key = create_key(store, site)
    response = client.post("/api/v2/query", headers={"Authorization": f"Bearer {key}"},
                           content=json.dumps({"site_id": site, "date_range": "day", **query}))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


# -- names, urls, domains ------------------------------------------------------------------

def test_a_numeric_event_name_is_recorded_as_its_text(client: TestClient, store: Store) -> None:
    accepted(client, {"n": 404, "u": "https://c1.test/missing", "d": "c1.test"})
    body = report(client, store, "c1.test", metrics=["events"], dimensions=["event:name"])
    assert body["results"] == [{"dimensions": ["404"], "metrics": [1]}]


def test_a_missing_domain_is_the_url_host(client: TestClient, store: Store) -> None:
    accepted(client, {"n": "pageview", "u": "https://www.c2.test/pricing"})
    assert stored(client, store, "c2.test") == [("pageview", "c2.test", "/pricing")]


def test_no_domain_and_no_host_to_take_it_from_is_a_400(client: TestClient) -> None:
    refused(client, {"n": "pageview", "u": "about:config"}, "domain")
    refused(client, {"n": "pageview", "u": "https://c3.test/", "d": ""}, "domain")


@pytest.mark.parametrize(("site", "url", "hostname", "pathname"), [
    ("c4a.test", "app://localhost/login", "localhost", "/login"),
    ("c4b.test", "chrome-extension://liipgellkffekalgefpjolodblggkmjg/popup.html",
     "liipgellkffekalgefpjolodblggkmjg", "/popup.html"),
    ("c4c.test", "about:config", "(none)", "config"),
    ("c4d.test", "https://c4d.test/path ", "c4d.test", "/path"),
    # Plausible keeps a file: URL's whole path; a local path can name the computer's user.
    ("c4e.test", "file:///android_asset/www/index.html", "(none)", "/index.html"),
])
def test_urls_of_any_scheme_but_data_are_recorded(client: TestClient, store: Store, site: str,
                                                  url: str, hostname: str,
                                                  pathname: str) -> None:
    accepted(client, {"n": "pageview", "u": url, "d": site})
    assert stored(client, store, site) == [("pageview", hostname, pathname)]


def test_a_data_url_is_a_400(client: TestClient) -> None:
    refused(client, {"n": "pageview", "u": "data:text/html,<script>alert(1)</script>",
                     "d": "c5.test"}, "url")


def test_a_domain_list_keeps_the_sites_it_can_name(client: TestClient, store: Store) -> None:
    accepted(client, {"n": "pageview", "u": "https://c6.test/", "d": "c6.test,not a domain!"})
    assert stored(client, store, "c6.test") == [("pageview", "c6.test", "/")]
    response = send(client, {"n": "pageview", "u": "https://c6.test/", "d": "not a domain!"})
    assert (response.status_code, response.headers["x-collector-dropped"]) == (
        202, "unknown-site")


def test_what_leaves_no_event_is_still_a_400(client: TestClient) -> None:
    refused(client, "", "body")
    refused(client, '"<script>"', "body")
    refused(client, {"u": "https://c7.test/", "d": "c7.test"}, "name")
    refused(client, {"n": ["a"], "u": "https://c7.test/", "d": "c7.test"}, "name")
    refused(client, {"n": "x" * 121, "u": "https://c7.test/", "d": "c7.test"}, "name")
    refused(client, {"n": "pageview", "d": "c7.test"}, "url")
    refused(client, {"n": "pageview", "u": "https://c7.test/" + "a" * 2000, "d": "c7.test"},
            "url")


# -- props ---------------------------------------------------------------------------------

@pytest.mark.parametrize("field", ["m", "meta", "p", "props"])
def test_props_under_any_of_their_names(client: TestClient, store: Store, field: str) -> None:
    site = f"c8{field}.test"
    accepted(client, {"n": "Signup", "u": f"https://{site}/", "d": site, field: {"plan": "pro"}})
    assert stored(client, store, site, "prop_keys, prop_values") == [(["plan"], ["pro"])]


def test_prop_values_that_are_objects_arrays_or_blank_are_dropped(client: TestClient,
                                                                  store: Store) -> None:
    accepted(client, {"n": "Signup", "u": "https://c9.test/", "d": "c9.test",
                      "p": json.dumps({"wat": ["x"], "foo": {"bar": "baz"}, "empty": "",
                                       "none": None, "seats": 3, "paid": True})})
    assert stored(client, store, "c9.test", "prop_keys, prop_values") == [
        (["seats", "paid"], ["3", "true"])]


@pytest.mark.parametrize(("site", "props"), [
    ("c10a.test", "{not json"), ("c10b.test", '"show-more:button"'), ("c10c.test", "[1, 2]"),
    ("c10d.test", 7), ("c10e.test", ["a"])])
def test_props_that_are_not_a_json_object_are_dropped(client: TestClient, store: Store,
                                                      site: str, props: Any) -> None:
    accepted(client, {"n": "Signup", "u": f"https://{site}/", "d": site, "p": props})
    assert stored(client, store, site, "name, prop_keys") == [("Signup", [])]


def test_the_first_thirty_props_are_kept(client: TestClient, store: Store) -> None:
    accepted(client, {"n": "Signup", "u": "https://c11.test/", "d": "c11.test",
                      "p": {f"k{i:02}": "v" for i in range(50)}})
    ((keys,),) = stored(client, store, "c11.test", "prop_keys")
    assert keys == [f"k{i:02}" for i in range(30)]


def test_a_prop_over_its_length_is_still_a_400(client: TestClient) -> None:
    refused(client, {"n": "x", "u": "https://c12.test/", "d": "c12.test",
                     "p": {"k" * 301: "v"}}, "props")
    refused(client, {"n": "x", "u": "https://c12.test/", "d": "c12.test",
                     "p": {"k": "v" * 2001}}, "props")


def test_a_404_event_gets_the_scrubbed_path_as_its_path_prop(client: TestClient,
                                                             store: Store) -> None:
    accepted(client, {"n": "404", "u": "https://c13.test/orders/12345678", "d": "c13.test"})
    assert stored(client, store, "c13.test", "prop_keys, prop_values") == [
        (["path"], ["/orders/:id"])]


# -- sources -------------------------------------------------------------------------------

@pytest.mark.parametrize(("site", "url", "referrer", "source", "utm_source"), [
    ("c14a.test", "https://c14a.test/?ref=betalist", None, "betalist", "betalist"),
    ("c14b.test", "https://c14b.test/?source=betalist", None, "betalist", "betalist"),
    ("c14c.test", "https://c14c.test/?utm_source=betalist", "https://betalist.com/my-product",
     "betalist", "betalist"),
    ("c14d.test", "https://c14d.test/?utm_source=facebook", None, "Facebook", "facebook"),
    ("c14e.test", "https://c14e.test/", "https://facebook.com/page/", "Facebook", ""),
])
def test_a_tagged_source_wins_over_the_referrer(client: TestClient, store: Store, site: str,
                                                url: str, referrer: str | None, source: str,
                                                utm_source: str) -> None:
    accepted(client, {"n": "pageview", "u": url, "d": site, "r": referrer})
    body = report(client, store, site, metrics=["visitors"], dimensions=["visit:source"])
    assert body["results"] == [{"dimensions": [source], "metrics": [1]}]
    assert stored(client, store, site, "utm_source") == [(utm_source,)]


def test_a_long_referrer_is_cut_and_one_that_is_no_text_ignored(client: TestClient,
                                                                store: Store) -> None:
    accepted(client, {"n": "pageview", "u": "https://c15.test/a", "d": "c15.test",
                      "r": "https://ref.example/" + "p" * 3000})
    accepted(client, {"n": "pageview", "u": "https://c15.test/b", "d": "c15.test", "r": 12})
    rows = stored(client, store, "c15.test", "referrer_source, length(referrer) <= 512")
    assert rows == [("ref.example", True), ("", True)]


# -- engagement and other fields -------------------------------------------------------------

def test_engagement_depth_past_100_is_100_and_an_empty_report_a_400(client: TestClient,
                                                                   store: Store) -> None:
    accepted(client, {"n": "pageview", "u": "https://c16.test/", "d": "c16.test"})
    accepted(client, {"n": "engagement", "u": "https://c16.test/", "d": "c16.test",
                      "sd": 101, "e": "1500"})
    refused(client, {"n": "engagement", "u": "https://c16.test/", "d": "c16.test"},
            "engagement_time")
    assert stored(client, store, "c16.test", "name, scroll_depth, engaged_ms") == [
        ("engagement", 100, 1500), ("pageview", 0, 0)]


def test_fields_plausible_ignores_do_not_refuse_the_event(client: TestClient,
                                                          store: Store) -> None:
    accepted(client, {"n": "pageview", "u": "https://c17.test/", "d": "c17.test",
                      "w": "wide", "i": "maybe", "v": 137, "sd": 10})
    assert stored(client, store, "c17.test", "interactive, scroll_depth, screen") == [
        (1, 0, "")]


# -- revenue -------------------------------------------------------------------------------

def test_revenue_is_stored_with_its_currency(client: TestClient, store: Store) -> None:
    site = "c18.test"
    accepted(client, {"n": "Payment", "u": f"https://{site}/", "d": site,
                      "revenue": {"amount": 10.2, "currency": "USD"}})
    accepted(client, {"n": "Payment", "u": f"https://{site}/", "d": site,
                      "$": json.dumps({"amount": "12.3", "currency": "EUR"})})
    accepted(client, {"n": "Payment", "u": f"https://{site}/", "d": site,
                      "revenue": {"amount": "1831d", "currency": "ADSIE"}})
    assert stored(client, store, site, "revenue_amount, revenue_currency") == [
        (10_200_000, "USD"), (12_300_000, "EUR"), (0, "")]


def purchase(client: TestClient, name: str, amount: float, currency: str) -> None:
    accepted(client, {"n": name, "u": f"https://{SHOP}/checkout", "d": SHOP,
                      "$": {"amount": amount, "currency": currency}})


def test_revenue_is_reported_in_the_goal_currency(client: TestClient, store: Store) -> None:
    purchase(client, "Purchase", 10, "EUR")
    purchase(client, "Purchase", 20.5, "EUR")
    purchase(client, "Purchase", 7, "USD")  # not the goal's currency: not converted, not counted
    purchase(client, "Subscription", 9.99, "USD")
    purchase(client, "Signup", 99, "EUR")  # not a revenue goal
    by_goal = report(client, store, SHOP, metrics=["total_revenue", "average_revenue", "events"],
                     dimensions=["event:goal"])
    # By the first metric, descending (Plausible's default order): no revenue comes last.
    assert by_goal["results"] == [
        {"dimensions": ["Purchase"], "metrics": [
            {"short": "€30.5", "long": "€30.50", "value": 30.5, "currency": "EUR"},
            {"short": "€15.2", "long": "€15.25", "value": 15.25, "currency": "EUR"}, 3]},
        {"dimensions": ["Subscription"], "metrics": [
            {"short": "$10.0", "long": "$9.99", "value": 9.99, "currency": "USD"},
            {"short": "$10.0", "long": "$9.99", "value": 9.99, "currency": "USD"}, 1]},
        {"dimensions": ["Signup"], "metrics": [None, None, 1]},
    ]
    one_goal = report(client, store, SHOP, metrics=["total_revenue"],
                      filters=[["is", "event:goal", ["Purchase"]]])
    assert one_goal["results"][0]["metrics"] == [
        {"short": "€30.5", "long": "€30.50", "value": 30.5, "currency": "EUR"}]
    assert "metric_warnings" not in one_goal["meta"]


def test_revenue_without_a_single_currency_is_null_with_a_warning(client: TestClient,
                                                                  store: Store) -> None:
    purchase(client, "Purchase", 5, "EUR")
    several = report(client, store, SHOP, metrics=["total_revenue", "visitors"])
    assert several["results"][0]["metrics"][0] is None
    assert several["meta"]["metric_warnings"]["total_revenue"]["code"] == \
        "no_single_revenue_currency"
    none = report(client, store, SHOP, metrics=["average_revenue"],
                  filters=[["is", "event:goal", ["Signup"]]])
    assert none["results"][0]["metrics"] == [None]
    assert none["meta"]["metric_warnings"]["average_revenue"]["code"] == \
        "no_revenue_goals_matching"


def test_revenue_by_page_and_ordered_by_it(client: TestClient, store: Store) -> None:
    site = "c19.test"
    add_goal(store, site, EVENT, "Order", currency="GBP")
    for page, amount in (("/a", 5), ("/b", 40), ("/b", 2.5)):
        accepted(client, {"n": "Order", "u": f"https://{site}{page}", "d": site,
                          "$": {"amount": amount, "currency": "GBP"}})
    body = report(client, store, site, metrics=["total_revenue"], dimensions=["event:page"],
                  order_by=[["total_revenue", "desc"]])
    assert [(row["dimensions"][0], row["metrics"][0]["long"]) for row in body["results"]] == [
        ("/b", "£42.50"), ("/a", "£5.00")]


def test_revenue_cannot_be_broken_down_by_visit_dimensions(client: TestClient,
                                                          store: Store) -> None:
    key = create_key(store, SHOP)
    response = client.post("/api/v2/query", headers={"Authorization": f"Bearer {key}"},
                           content=json.dumps({"site_id": SHOP, "date_range": "day",
                                               "metrics": ["total_revenue"],
                                               "dimensions": ["visit:source"]}))
    assert (response.status_code, response.json()["field"]) == (400, "metrics[0]")


# -- the privacy rules, after lenient acceptance -------------------------------------------

def every_stored_value(store: Store, site: str) -> str:
    events = store.rows("SELECT * FROM events WHERE site = {site:String}", {"site": site})
    visits = store.rows("SELECT * FROM visits WHERE site = {site:String}", {"site": site})
    return repr(events) + repr(visits)


def test_no_address_user_agent_or_query_string_is_stored(client: TestClient,
                                                         store: Store) -> None:
    site = "p1.test"
    agent = CHROME_UA + " Unique/9.9"
    accepted_with_agent = send(client, {
        "n": "Signup", "u": "app://localhost/welcome?utm_source=mail&email=jane@example.com"
        "&session=abc123secret", "m": {"plan": "pro"}, "d": site,
        "r": "https://ref.example/from?q=private-search"}, **{"User-Agent": agent})
    assert accepted_with_agent.status_code == 202
    assert stored(client, store, site, "hostname, pathname, utm_source, referrer") == [
        ("localhost", "/welcome", "mail", "ref.example/from")]
    everything = every_stored_value(store, site)
    address_as_integer = str(int.from_bytes(bytes(map(int, CLIENT_ADDRESS.split(".")))))
    for secret in (CLIENT_ADDRESS, address_as_integer, agent, "Unique", "jane", "abc123secret",
                   "private-search"):
        assert secret not in everything


def test_paths_of_any_scheme_are_scrubbed(client: TestClient, store: Store) -> None:
    site = "p2.test"
    accepted(client, {"n": "pageview", "d": site,
                      "u": "app://localhost/users/jane@example.com/orders/123456789"})
    accepted(client, {"n": "pageview", "d": site, "u": "file:///Users/jane/Sites/index.html"})
    accepted(client, {"n": "pageview", "d": site, "u": "/account/4f9c2e1ab7d04c88a1e2"})
    assert [path for (path,) in stored(client, store, site, "pathname")] == [
        "/account/:token", "/index.html", "/users/:email/orders/:id"]
    assert "jane" not in every_stored_value(store, site)

"""Hostile input over HTTP: every request a client can build gets a 4xx naming the field.

Each case of issue 13's "500s from input" list, then their neighbours: odd types,
huge numbers, NaN, non-UTF-8 bytes, null bytes, on the event endpoint, the pixel
and the report endpoints. The TestClient re-raises any exception the app lets
escape, so a 500 fails these tests with its traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.errors import InvalidField
from collector.ingest import MAX_ENGAGEMENT_MS, parse_event
from collector.reports.auth import create_key
from collector.reports.request import MAX_FILTER_DEPTH, MAX_FILTER_VALUES
from collector.storage import Store
from collector.untrusted_json import MAX_JSON_DEPTH
from tests.conftest import CHROME_UA, flush, running_app

SITE = "hostile.test"
QUERY = {"site_id": SITE, "date_range": "7d", "metrics": ["visitors"]}
EVENT = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
REPORT_PATHS = ("/api/v2/query", "/api/v2/drops", "/api/v2/properties")
DEEP_OBJECT = b'{"a":' * 10_000
DEEP_ARRAY = b"[" * 10_000


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    with running_app(store, engine_url) as running:
        yield running


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


def query(client: TestClient, key: str, body: Any, path: str = "/api/v2/query") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post(path, content=raw, headers={"Authorization": f"Bearer {key}"})


def post_event(client: TestClient, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/api/event", content=raw,
                       headers={"User-Agent": CHROME_UA, "Content-Type": "text/plain"})


def assert_rejected(response: Any, field: str, status: int = 400) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["field"] == field
    reason: str = body["error"]
    assert reason
    return reason


def nested_not(levels: int) -> list[Any]:
    condition: list[Any] = ["is", "event:page", ["/"]]
    for _ in range(levels):
        condition = ["not", condition]
    return condition


# -- the list ------------------------------------------------------------------

@pytest.mark.parametrize("metric", [["visitors"], {}, 5, None])
def test_a_metric_that_is_not_a_name_is_a_400(client: TestClient, key: str,
                                              metric: Any) -> None:
    assert_rejected(query(client, key, {**QUERY, "metrics": [metric]}), "metrics[0]")


@pytest.mark.parametrize(("date_range", "field"), [
    (["9999-12-31", "9999-12-31"], "date_range[0]"),
    (["2024-01-01", "9999-12-31"], "date_range[1]"),
    (["1969-12-01", "1969-12-31"], "date_range[0]"),
    (["1970-01-01", "1970-01-02"], "date_range[0]"),
    (["0001-01-01", "0001-01-02"], "date_range[0]"),
])
@pytest.mark.parametrize("path", REPORT_PATHS)
def test_dates_the_store_cannot_hold_are_a_400(client: TestClient, key: str, path: str,
                                               date_range: list[str], field: str) -> None:
    body = {"site_id": SITE, "date_range": date_range}
    if path == "/api/v2/query":
        body["metrics"] = ["visitors"]
    assert "1971-01-01" in assert_rejected(query(client, key, body, path), field)


def test_the_edges_of_the_accepted_dates_answer(client: TestClient, key: str) -> None:
    for date_range in (["1971-01-01", "1971-01-02"], ["2105-12-30", "2105-12-31"]):
        response = query(client, key, {**QUERY, "date_range": date_range,
                                       "dimensions": ["visit:source"],
                                       "filters": [["is", "event:page", ["/"]]]})
        assert response.status_code == 200, response.text


def test_a_comparison_before_1971_is_a_400(client: TestClient, key: str) -> None:
    body = {**QUERY, "date_range": ["1971-01-01", "1971-01-31"],
            "include": {"comparison": "previous_period"}}
    assert_rejected(query(client, key, body), "include.comparison")


@pytest.mark.parametrize("operator", ["contains", "is", "matches", "contains_not"])
def test_more_values_than_the_cap_in_one_filter_are_a_400(client: TestClient, key: str,
                                                          operator: str) -> None:
    values = [f"/page-{index}" for index in range(300)]
    body = {**QUERY, "filters": [[operator, "event:page", values]]}
    reason = assert_rejected(query(client, key, body), "filters[0][2]")
    assert str(MAX_FILTER_VALUES) in reason
    capped = {**QUERY, "filters": [[operator, "event:page", values[:MAX_FILTER_VALUES]]]}
    assert query(client, key, capped).status_code == 200


def test_filters_nested_beyond_the_cap_are_a_400(client: TestClient, key: str) -> None:
    allowed = {**QUERY, "filters": [nested_not(MAX_FILTER_DEPTH)]}
    assert query(client, key, allowed).status_code == 200
    too_deep = {**QUERY, "filters": [nested_not(MAX_FILTER_DEPTH + 1)]}
    path = "filters[0]" + "[1]" * MAX_FILTER_DEPTH
    assert_rejected(query(client, key, too_deep), path)
    wide = {**QUERY, "filters": [["and", [nested_not(MAX_FILTER_DEPTH)]]]}
    assert_rejected(query(client, key, wide), "filters[0][1][0]" + "[1]" * (MAX_FILTER_DEPTH - 1))


def test_nine_hundred_nested_nots_are_a_400(client: TestClient, key: str) -> None:
    body = {**QUERY, "filters": [nested_not(900)]}
    assert "nested deeper" in assert_rejected(query(client, key, body), "body")


@pytest.mark.parametrize("body", [
    DEEP_OBJECT, DEEP_ARRAY, DEEP_OBJECT + b"1" + b"}" * 10_000,
    b'{"n":"pageview","u":"https://hostile.test/","d":"hostile.test","p":'
    + b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH + b"}",
], ids=["object", "array", "closed", "just-too-deep"])
@pytest.mark.parametrize("path", ["/api/event", *REPORT_PATHS])
def test_deeply_nested_bodies_are_a_400(client: TestClient, key: str, path: str,
                                        body: bytes) -> None:
    response = post_event(client, body) if path == "/api/event" else query(client, key, body,
                                                                             path)
    assert_rejected(response, "body")


def test_nesting_up_to_the_cap_decodes(client: TestClient) -> None:
    inner: Any = 1
    for _ in range(MAX_JSON_DEPTH - 1):
        inner = [inner]
    assert post_event(client, {**EVENT, "extra": inner}).status_code == 202
    assert_rejected(post_event(client, {**EVENT, "extra": [inner]}), "body")


def test_deeply_nested_props_in_a_string_are_dropped(client: TestClient, store: Store) -> None:
    # Props Plausible cannot read are dropped, the event kept; the string is never walked.
    deep = '{"a":' * 5_000 + "1" + "}" * 5_000
    for props in ('{"a":' * 5_000, deep):
        assert post_event(client, {**EVENT, "n": "Deep", "p": props}).status_code == 202
    flush(client)
    assert store.rows("SELECT prop_keys FROM events WHERE name = 'Deep'") == [([],), ([],)]


# -- their neighbours on the event endpoint ----------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    (b'{"n":"pageview","u":"https://hostile.test/","d":"hostile.test","w":NaN}', "body"),
    (b'{"n":"pageview","u":"https://hostile.test/","d":"hostile.test","w":Infinity}', "body"),
    (b'{"n":"pageview","u":"https://hostile.test/","d":"hostile.test","w":1e999}', "body"),
    (b'{"n":"pageview","u":"https://hostile.test/\xff","d":"hostile.test"}', "body"),
    (b"\xff\xfe{\x00}", "body"),
    (b'{"n":"engagement","u":"https://hostile.test/","d":"hostile.test","sd":0.5}',
     "engagement_time"),
    (b'{"n":"engagement","u":"https://hostile.test/","d":"hostile.test","e":-1}',
     "engagement_time"),
    (b'{"n":"engagement","u":"https://hostile.test/","d":"hostile.test","e":"long"}',
     "engagement_time"),
    (b'{"n":"pageview","u":"https://hostile.test/","d":"hostile.test","p":{"a":'
     + b"9" * 5000 + b"}}", "body"),
    (b'{"n":"pageview","u":"http://[::1","d":"hostile.test"}', "url"),
    (b'{"n":{"n":1},"u":"https://hostile.test/","d":"hostile.test"}', "name"),
], ids=lambda value: value if isinstance(value, str) else None)
def test_odd_values_in_an_event_are_a_400(client: TestClient, body: bytes, field: str) -> None:
    assert_rejected(post_event(client, body), field)


@pytest.mark.parametrize("extra", [
    {"u": f"https://{SITE}/a\u0000b"}, {"r": "http://[x"}, {"r": "https://r.test:99999/"},
    {"p": {"big": 10**18, "small": -(10**18), "float": 1e308, "": "empty key"}},
    {"n": "pageview\u0000"}, {"u": f"https://{SITE}/" + "%" * 1900},
    # What Plausible drops on its own, keeping the event (an odd domain names no site).
    {"w": 1e300}, {"d": ["hostile.test"]}, {"sd": 1e20}, {"e": -1}, {"e": "long"},
    {"d": f"{SITE}\u0000"}, {"$": {"amount": 1e308, "currency": "USD"}},
    {"$": {"amount": "1e999999", "currency": "USD"}},
])
def test_odd_but_valid_events_are_accepted(client: TestClient, extra: dict[str, Any]) -> None:
    assert post_event(client, {**EVENT, **extra}).status_code == 202


# -- engagement time ----------------------------------------------------------------------

def test_an_engagement_report_counts_at_most_thirty_minutes() -> None:
    for sent in (b"86400000", b"1e15", b"100000000000000000000"):
        event = parse_event(b'{"n":"engagement","u":"https://e.test/","d":"e.test","e":'
                            + sent + b"}", 1000)
        assert event.engaged_ms == MAX_ENGAGEMENT_MS
    with pytest.raises(InvalidField):
        parse_event(b'{"n":"engagement","u":"https://e.test/","d":"e.test","e":-5}', 1000)


def test_fifty_one_day_long_engagement_reports_make_no_fifty_day_visit(
        store: Store, engine_url: str, tmp_path: Path) -> None:
    site = "engaged.test"
    with running_app(store, engine_url, data_dir=tmp_path) as client:
        assert post_event(client, {"n": "pageview", "u": f"https://{site}/", "d": site}) \
            .status_code == 202
        for _ in range(51):
            assert post_event(client, {"n": "engagement", "u": f"https://{site}/", "d": site,
                                       "e": 86_400_000}).status_code == 202
        flush(client)
    (duration, engaged), = store.rows(
        "SELECT sum(sign * duration), sum(sign * engaged_ms) FROM visits "
        "WHERE site = {s:String}", {"s": site})
    assert engaged <= MAX_ENGAGEMENT_MS + 60_000  # the span of the test, plus one report
    assert duration <= engaged // 1000 + 60
    assert store.rows("SELECT max(engaged_ms) FROM events WHERE site = {s:String}",
                      {"s": site}) == [(MAX_ENGAGEMENT_MS,)]


class SteppingClock:
    """Time that moves on by ``step`` seconds every time it is read."""

    def __init__(self, start: float, step: float) -> None:
        self.now, self.step = start, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_a_visit_s_engagement_saturates_and_never_wraps(store: Store, engine_url: str,
                                                        tmp_path: Path) -> None:
    # 2,400 reports of 30 minutes would be 4.3e9 ms: past the UInt32 column without the cap.
    site = "saturated.test"
    clock = SteppingClock(1_767_225_600.0, 0.25)  # 2026-01-01, a quarter second per read
    with running_app(store, engine_url, clock=clock, data_dir=tmp_path) as client:
        post_event(client, {"n": "pageview", "u": f"https://{site}/", "d": site})
        for _ in range(2400):
            post_event(client, {"n": "engagement", "u": f"https://{site}/", "d": site,
                                "e": MAX_ENGAGEMENT_MS})
        flush(client)
    (duration, engaged), = store.rows(
        "SELECT sum(sign * duration), sum(sign * engaged_ms) FROM visits "
        "WHERE site = {s:String}", {"s": site})
    (span_ms,), = store.rows(
        "SELECT toUnixTimestamp64Milli(max(timestamp)) - toUnixTimestamp64Milli(min(timestamp)) "
        "FROM events WHERE site = {s:String}", {"s": site})
    assert 0 < engaged <= span_ms + MAX_ENGAGEMENT_MS
    assert duration == engaged // 1000


# -- the pixel -----------------------------------------------------------------------------

def assert_gif(response: Any) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")


@pytest.mark.parametrize(("query_string", "reason"), [
    ("d=hostile.test&u=http://[x", "invalid u"),
    ("d=hostile.test&u=javascript:alert(1)", "invalid u"),
    ("d=hostile.test", "invalid u"),
    ("u=/", "invalid d"),
    ("d=%FF%00&u=/", "unknown-site"),  # names no site
    ("d=hostile.test&u=/" + "x" * 3000, "invalid url"),
    ("d=hostile.test&u=/&n=" + "x" * 200, "invalid name"),
])
def test_the_pixel_answers_bad_input_with_the_gif(client: TestClient, query_string: str,
                                                  reason: str) -> None:
    response = client.get(f"/pixel.gif?{query_string}", headers={"User-Agent": CHROME_UA})
    assert_gif(response)
    assert response.headers["x-collector-dropped"] == reason


def test_the_pixel_answers_overload_with_the_gif(store: Store, engine_url: str,
                                                 tmp_path: Path) -> None:
    with running_app(store, engine_url, buffer_max_rows=2, flush_interval=3600,
                     data_dir=tmp_path) as client:
        answers = [client.get(f"/pixel.gif?d=full.test&u=/{index}",
                              headers={"User-Agent": CHROME_UA}) for index in range(5)]
        event = post_event(client, {"n": "pageview", "u": "https://full.test/", "d": "full.test"})
    for response in answers:
        assert_gif(response)
    refused = [response for response in answers if "x-collector-dropped" in response.headers]
    assert refused and all(response.headers["x-collector-dropped"] == "overloaded"
                           and response.headers["retry-after"] for response in refused)
    assert event.status_code == 503 and event.headers["retry-after"]


# -- the report endpoints' other fields ------------------------------------------------------

@pytest.mark.parametrize(("body", "field"), [
    ({**QUERY, "pagination": {"limit": 10, "offset": 10**30}}, "pagination.offset"),
    ({**QUERY, "pagination": {"limit": 10, "offset": -1}}, "pagination.offset"),
    ({**QUERY, "pagination": {"limit": 1e3}}, "pagination.limit"),
    ({**QUERY, "pagination": {"limit": -10}}, "pagination.limit"),
    ({**QUERY, "dimensions": [["event:page"]]}, "dimensions[0]"),
    ({**QUERY, "dimensions": "event:page"}, "dimensions"),
    ({**QUERY, "order_by": [[{}, "asc"]]}, "order_by[0][0]"),
    ({**QUERY, "order_by": [["visitors", []]]}, "order_by[0][1]"),
    ({**QUERY, "filters": [["is", {}, ["x"]]]}, "filters[0][1]"),
    ({**QUERY, "filters": [["is", "event:page", [1.5]]]}, "filters[0][2][0]"),
    ({**QUERY, "filters": [[None]]}, "filters[0]"),
    ({**QUERY, "include": {"time_labels": "yes"}}, "include.time_labels"),
    ({**QUERY, "date_range": ["2024-01-01", None]}, "date_range"),
    ({**QUERY, "date_range": ["2024-01-01", "NaN"]}, "date_range[1]"),
    ({**QUERY, "date_range": 7}, "date_range"),
    ({**QUERY, "site_id": 5}, "site_id"),
    ([QUERY], "body"),
])
def test_odd_values_in_a_query_are_a_400(client: TestClient, key: str, body: Any,
                                         field: str) -> None:
    assert_rejected(query(client, key, body), field)


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/api/v2/drops", {"site_id": SITE, "date_range": "7d", "dimensions": [{}]},
     "dimensions[0]"),
    ("/api/v2/drops", {"site_id": SITE, "date_range": "7d", "dimensions": "time:day"},
     "dimensions"),
    ("/api/v2/properties", {"site_id": SITE, "date_range": [1, 2]}, "date_range"),
    ("/api/v2/properties", {"site_id": [SITE], "date_range": "7d"}, "site_id"),
])
def test_odd_values_on_the_other_report_endpoints_are_a_400(client: TestClient, key: str,
                                                            path: str, body: Any,
                                                            field: str) -> None:
    assert_rejected(query(client, key, body, path), field)


@pytest.mark.parametrize("raw", [b"\xff\xfe\x00", b'{"site_id":"hostile.test\xff"}', b"NaN",
                                 b"", b'{"site_id":' + b"1" * 5000 + b"}"])
@pytest.mark.parametrize("path", REPORT_PATHS)
def test_undecodable_report_bodies_are_a_400(client: TestClient, key: str, path: str,
                                             raw: bytes) -> None:
    assert_rejected(query(client, key, raw, path), "body")

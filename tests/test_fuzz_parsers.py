"""Property tests: the event and query parsers, and their HTTP endpoints, over any input.

Whatever arrives — arbitrary bytes, arbitrary JSON, or JSON shaped almost like a
real request — a parser returns a value or raises a ``ClientError`` with a reason
(and the field, for a 400), and an endpoint answers below 500, its errors as JSON.
Examples are derandomized and no example database is kept, so CI runs the same
inputs every time; 200 of them per test keep the file to a few seconds.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from collector.errors import ClientError, InvalidField
from collector.ingest import IncomingEvent, parse_event
from collector.reports.dimensions import DIMENSIONS
from collector.reports.metrics import METRICS
from collector.reports.request import (
    FILTER_OPERATORS,
    LOGICAL_OPERATORS,
    QuerySpec,
    parse_query,
)
from tests import test_hostile_inputs as hostile
from tests.conftest import CHROME_UA

SITE = hostile.SITE
# The hostile-input tests' module fixtures: a running collector and a key for SITE.
client, key = hostile.client, hostile.key
LIMIT = 65536

REPRODUCIBLE = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                        suppress_health_check=[HealthCheck.too_slow])

scalars = (st.none() | st.booleans() | st.integers() | st.text(max_size=20)
           | st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(
    scalars, lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4), max_leaves=16)


def encoded(value: Any) -> bytes:
    """JSON text, NaN and Infinity included (invalid JSON: the parsers must say so)."""
    return json.dumps(value).encode()


# -- events -----------------------------------------------------------------------------

def either(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return plausible | json_values


prop_maps = st.dictionaries(st.text(max_size=12), scalars, max_size=6)
event_fields: dict[str, st.SearchStrategy[Any]] = {
    "n": either(st.sampled_from(["pageview", "engagement", "Signup"])),
    "u": either(st.sampled_from([f"https://{SITE}/", f"https://{SITE}/a?utm_source=x#h",
                                 "/relative", "http://[::1", "ftp://x"])),
    "d": either(st.sampled_from([SITE, f"www.{SITE},other.test", "", ",,"])),
    "r": either(st.sampled_from(["https://search.test/?q=1", "http://[x", ""])),
    "p": either(prop_maps | prop_maps.map(json.dumps)),
    "w": either(st.integers(-10, 200_000)),
    "sd": either(st.integers(-5, 105)),
    "e": either(st.integers(-5, 10**12) | st.floats()),
    "h": either(st.sampled_from([0, 1, True, False])),
    "i": either(st.booleans()),
}
event_bodies = st.fixed_dictionaries({}, optional=event_fields)


def assert_parsed_or_refused(parse: Any, raw: Any) -> Any:
    try:
        return parse(raw)
    except ClientError as error:
        assert 400 <= error.status_code < 500
        assert error.reason
        if isinstance(error, InvalidField):
            assert error.field is not None
        return None


@REPRODUCIBLE
@given(st.binary(max_size=300))
def test_the_event_parser_takes_any_bytes(raw: bytes) -> None:
    parsed = assert_parsed_or_refused(lambda body: parse_event(body, LIMIT), raw)
    assert parsed is None or isinstance(parsed, IncomingEvent)


@REPRODUCIBLE
@given(json_values | event_bodies)
def test_the_event_parser_takes_any_json(value: Any) -> None:
    parsed = assert_parsed_or_refused(lambda body: parse_event(body, LIMIT), encoded(value))
    if parsed is not None:
        assert 0 <= parsed.engaged_ms <= 30 * 60 * 1000
        assert len(parsed.prop_keys) == len(parsed.prop_values)


# -- queries ----------------------------------------------------------------------------

dimension_names = st.sampled_from([*DIMENSIONS, "event:props:plan", "event:goal"])
leaf_filters = st.tuples(st.sampled_from(FILTER_OPERATORS), dimension_names,
                         st.lists(st.text(max_size=6), min_size=1, max_size=3)).map(list)
filters = st.recursive(
    leaf_filters | json_values,
    lambda children: st.tuples(st.sampled_from(["and", "or"]),
                               st.lists(children, min_size=1, max_size=3)).map(list)
    | st.tuples(st.just("not"), children).map(list)
    | st.tuples(st.sampled_from(LOGICAL_OPERATORS), json_values).map(list),
    max_leaves=8)
query_fields: dict[str, st.SearchStrategy[Any]] = {
    "date_range": either(st.sampled_from(["day", "24h", "7d", "30d", "month", "12mo", "year",
                                          "all", "week"])
                         | st.lists(st.dates().map(str) | st.text(max_size=12),
                                    min_size=2, max_size=2)),
    "metrics": either(st.lists(st.sampled_from(list(METRICS)), min_size=1, max_size=3,
                               unique=True)),
    "dimensions": either(st.lists(dimension_names, max_size=2, unique=True)),
    "filters": either(st.lists(filters, max_size=3)),
    "order_by": either(st.lists(st.tuples(st.sampled_from(["visitors", "event:page"]),
                                          st.sampled_from(["asc", "desc", "up"])).map(list),
                                max_size=2)),
    "pagination": either(st.fixed_dictionaries({}, optional={
        "limit": st.integers(-2, 20_000), "offset": st.integers(-2, 2**40)})),
    "include": either(st.fixed_dictionaries({}, optional={
        "comparison": st.sampled_from([None, "previous_period", "year_over_year"]),
        "time_labels": st.booleans(), "sample": st.booleans()})),
}
query_bodies = st.fixed_dictionaries({"site_id": either(st.just(SITE))}, optional=query_fields)


@REPRODUCIBLE
@given(json_values | query_bodies)
def test_the_query_parser_takes_any_json(value: Any) -> None:
    parsed = assert_parsed_or_refused(parse_query, value)
    assert parsed is None or isinstance(parsed, QuerySpec)


# -- over HTTP --------------------------------------------------------------------------

def assert_answered(response: Any, accepted: int) -> None:
    assert response.status_code < 500, response.text
    if response.status_code != accepted:
        assert 400 <= response.status_code < 500
        answer = response.json()
        assert answer["error"]
        if response.status_code == 400:
            assert isinstance(answer["field"], str)  # "" for an unknown key "" itself


HTTP = settings(REPRODUCIBLE, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.function_scoped_fixture])


@HTTP
@given(st.binary(max_size=300) | (json_values | event_bodies).map(encoded))
def test_the_event_endpoint_never_answers_5xx(client: TestClient, raw: bytes) -> None:
    response = client.post("/api/event", content=raw, headers={"User-Agent": CHROME_UA})
    assert_answered(response, 202)


@HTTP
@given(st.binary(max_size=300) | (json_values | query_bodies).map(encoded))
def test_the_query_endpoint_never_answers_5xx(client: TestClient, key: str,
                                              raw: bytes) -> None:
    response = client.post("/api/v2/query", content=raw,
                           headers={"Authorization": f"Bearer {key}"})
    assert_answered(response, 200)


report_bodies = st.fixed_dictionaries({"site_id": either(st.just(SITE))}, optional={
    "date_range": query_fields["date_range"],
    "dimensions": either(st.lists(st.sampled_from(["time:hour", "time:day", "time:month"]),
                                  max_size=2))})


@HTTP
@given(json_values.map(encoded) | report_bodies.map(encoded), st.sampled_from(
    ["/api/v2/drops", "/api/v2/properties"]))
def test_the_other_report_endpoints_never_answer_5xx(client: TestClient, key: str, raw: bytes,
                                                      path: str) -> None:
    response = client.post(path, content=raw, headers={"Authorization": f"Bearer {key}"})
    assert_answered(response, 200)


@HTTP
@given(st.dictionaries(st.sampled_from(["d", "u", "r", "n"]),
                       st.text(max_size=40) | st.sampled_from([SITE, "/", "http://[x"]),
                       max_size=4))
def test_the_pixel_always_answers_with_the_gif(client: TestClient,
                                               params: dict[str, str]) -> None:
    response = client.get("/pixel.gif", params=params, headers={"User-Agent": CHROME_UA})
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/gif"

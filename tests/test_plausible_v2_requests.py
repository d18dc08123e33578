"""Stats API v2 requests as Plausible takes them: its JSON schema's forms, its validations.

Cases derived from Plausible's schema (``priv/json-schemas/query-api-schema.json``) and
its parser and controller tests (``query_parser_test.exs``, ``query_*_test.exs``),
written here with this collector's own traffic and expected values. The schema itself
(``collector/reports/query_schema.json``) is checked on its own first, then the
endpoint: what it refuses (400, ``{"error", "field"}``), what it now accepts
(date-time ranges, ``include.total_rows``/``imports``, ``case_sensitive``, periods),
and the echoed ``query``, which posted again asks the same.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from starlette.testclient import TestClient

import collector.reports
from collector.reports.auth import create_key
from collector.reports.dimensions import DIMENSIONS
from collector.reports.goals import EVENT, add_goal
from collector.reports.metrics import METRICS
from collector.reports.query_schema import QUERY_SCHEMA
from collector.reports.request import FILTER_OPERATORS, MAX_FILTER_VALUES, MAX_LIMIT
from collector.storage import Store
from tests.conftest import running_app
from tests.reporting_data import SITE, at, day, make_event, store_events

SCHEMA_FILE = Path(collector.reports.__file__).parent / "query_schema.json"
DAY0, DAY1 = day(0).isoformat(), day(1).isoformat()
TWO_DAYS = [DAY0, DAY1]
BASE = {"site_id": SITE, "date_range": TWO_DAYS, "metrics": ["visitors"]}
PAGES = {**BASE, "dimensions": ["event:page"]}
# Names Plausible's API defines that the collector's schema lists before its code may
# answer them (the code's allow-lists refuse them until then).
PLAUSIBLE_NAMES = {"time", "group_conversion_rate", "visit:country_name", "visit:region_name",
                   "visit:city_name", "visit:entry_page_hostname", "visit:exit_page_hostname"}


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    store_events(store, [
        make_event(at("10:00"), 1, "/Blog/Post", browser="Chrome", country="DE"),
        make_event(at("10:30"), 2, "/blog/post", browser="Firefox", country="FR"),
        make_event(at("12:00"), 3, "/pricing", browser="Safari", country="US"),
        make_event(at("09:00", 1), 4, "/", country="DE"),
        make_event(at("09:05", 1), 4, "/", "Signup", country="DE"),
    ])
    add_goal(store, SITE, EVENT, "Signup", "Signup")
    with running_app(store, engine_url) as running:
        yield running


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


def post(client: TestClient, key: str, body: Any) -> Any:
    return client.post("/api/v2/query", json=body, headers={"Authorization": f"Bearer {key}"})


def answer(client: TestClient, key: str, body: Any) -> dict[str, Any]:
    response = post(client, key, body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def visitors(client: TestClient, key: str, **body: Any) -> int:
    return int(answer(client, key, {**BASE, **body})["results"][0]["metrics"][0])


# ---------------------------------------------------------------- the schema file itself

def schema_names(schema: Any) -> set[str]:
    """Every name an enum lists in ``schema``, following references, ``if`` branches
    and ``anyOf``."""
    if isinstance(schema, list):
        return set().union(*(schema_names(item) for item in schema))
    if not isinstance(schema, dict):
        return set()
    if "$ref" in schema:
        return schema_names(QUERY_SCHEMA["$defs"][schema["$ref"].rsplit("/", 1)[1]])
    return set(schema.get("enum", ())).union(*(schema_names(schema.get(key))
                                                for key in ("then", "else", "anyOf")))


def validator() -> Draft202012Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


ACCEPTED_BODIES = [
    BASE,
    {**BASE, "date_range": "7d"},
    {**BASE, "date_range": "91d"},
    {**BASE, "date_range": "24h"},  # extension
    {**BASE, "date_range": ["2024-01-01T10:00:00+02:00", "2024-01-02T12:00:00Z"]},
    {**BASE, "date_range": ["2024-01-01T10:00:00.250+02:00", "2024-01-01T11:00:00-05:00"]},
    {**BASE, "metrics": ["visitors", "views_per_visit", "bounce_rate", "visit_duration",
                         "events", "scroll_depth", "time_on_page", "total_revenue"]},
    {**BASE, "dimensions": ["time", "visit:country_name", "event:props:plan"]},
    {**BASE, "dimensions": ["visit:language", "visit:isp"]},  # extensions
    {**BASE, "filters": [["is", "visit:country", ["DE"], {"case_sensitive": False}]]},
    {**BASE, "filters": [["and", [["contains", "event:page", ["blog"]],
                                  ["not", ["matches", "visit:browser", ["^Fire"]]]]]]},
    {**BASE, "filters": [["has_done", ["is", "event:goal", ["Signup"]]]]},
    {**BASE, "filters": [["is", "event:props:url", ["https://example.com/"]]]},
    {**BASE, "order_by": [["visitors", "desc"], ["event:page", "asc"]]},
    {**BASE, "include": {"time_labels": True, "total_rows": True, "imports": False,
                         "comparisons": {"mode": "custom", "date_range": TWO_DAYS},
                         "sample": True}},
    {**BASE, "include": {"comparison": "previous_period"}},  # extension
    {**BASE, "pagination": {"limit": 10000, "offset": 0}},
]

REFUSED_BODIES = [
    {"metrics": ["visitors"], "date_range": "7d"},  # no site_id
    {**BASE, "metrics": []},
    {**BASE, "metrics": ["visitors", "visitors"]},
    {**BASE, "metrics": ["led_zeppelin"]},
    {**BASE, "date_range": "3d"},
    {**BASE, "date_range": ["2024-01-01"]},
    {**BASE, "date_range": ["2024-01-01", "2024-01-02T00:00:00Z"]},  # a date and a date-time
    {**BASE, "date_range": ["2024-01-01T10:00:00", "2024-01-01T12:00:00"]},  # no offset
    {**BASE, "dimensions": ["visit:password"]},
    {**BASE, "dimensions": ["event:props:"]},
    {**BASE, "filters": [["equals", "event:page", ["/"]]]},
    {**BASE, "filters": [["is", "time:day", ["2024-01-01"]]]},
    {**BASE, "filters": [["is", "event:page", []]]},
    {**BASE, "filters": [["is", "event:page", ["/"], {"case_sensitive": "no"}]]},
    {**BASE, "filters": [["is", "event:page", ["/"], {"whole_word": True}]]},
    {**BASE, "filters": [["and", []]]},
    {**BASE, "filters": [["not", ["is", "event:page", ["/"]], ["is", "event:page", ["/"]]]]},
    {**BASE, "order_by": [["visitors", "up"]]},
    {**BASE, "include": {"nope": True}},
    {**BASE, "include": {"comparisons": {"mode": "yesterday"}}},
    {**BASE, "pagination": {"limit": 10001}},
    {**BASE, "pagination": {"offset": -1}},
    {**BASE, "colour": "red"},
]


@pytest.mark.parametrize("body", ACCEPTED_BODIES)
def test_the_schema_accepts_plausibles_forms_and_the_extensions(body: dict[str, Any]) -> None:
    assert list(validator().iter_errors(body)) == []


@pytest.mark.parametrize("body", REFUSED_BODIES)
def test_the_schema_refuses_what_neither_accepts(body: dict[str, Any]) -> None:
    assert not validator().is_valid(body)


def test_the_schema_lists_every_name_the_code_answers() -> None:
    definitions = validator().schema["$defs"]
    metrics, dimensions = schema_names(definitions["metric"]), schema_names(
        definitions["dimension"])
    assert set(METRICS) <= metrics and set(DIMENSIONS) <= dimensions
    # Anything more is Plausible's, listed ahead of the code.
    assert (metrics - set(METRICS)) | (dimensions - set(DIMENSIONS)) <= PLAUSIBLE_NAMES
    assert set(FILTER_OPERATORS) == schema_names(definitions["condition"]["prefixItems"][0])
    assert definitions["condition"]["prefixItems"][2]["maxItems"] == MAX_FILTER_VALUES
    limit = validator().schema["properties"]["pagination"]["properties"]["limit"]
    assert limit["maximum"] == MAX_LIMIT


# ---------------------------------------------------------------- refused: 400 and the field

@pytest.mark.parametrize(("body", "field"), [
    ({**BASE, "include": {"time_labels": True}}, "include.time_labels"),
    ({**BASE, "dimensions": ["visit:source"], "include": {"time_labels": True}},
     "include.time_labels"),
    ({**BASE, "metrics": ["visitors", "views_per_visit"],
      "filters": [["or", [["is", "visit:country", ["DE"]], ["is", "event:page", ["/"]]]]]},
     "metrics[1]"),
    ({**BASE, "metrics": ["views_per_visit"], "dimensions": ["event:page"]}, "metrics[0]"),
    ({**BASE, "filters": [["is", "visit:country", ["Germany"]]]}, "filters[0][2][0]"),
    ({**BASE, "filters": [["is_not", "visit:country", ["DE", "DEU"]]]}, "filters[0][2][1]"),
    ({**BASE, "filters": [["or", [["is", "event:goal", ["Signup"]],
                                  ["is", "event:page", ["/"]]]]]}, "filters[0][1][0][1]"),
    ({**BASE, "filters": [["not", ["is", "event:hostname", ["example.com"]]]]},
     "filters[0][1][1]"),
    ({**BASE, "metrics": ["visitors", "conversion_rate"],
      "filters": [["is", "event:goal", ["Signup"]],
                  ["or", [["is", "event:props:plan", ["pro"]], ["is", "visit:country", ["DE"]]]]]},
     "filters[1][1][0][1]"),
    ({**BASE, "metrics": []}, "metrics"),
    ({**BASE, "metrics": ["visitors", "event:name"]}, "metrics[1]"),
    ({"site_id": SITE, "metrics": ["visitors"]}, "date_range"),
    ({**BASE, "filters": "foobar"}, "filters"),
    ({**BASE, "filters": [["is", "event:name", "foo"]]}, "filters[0][2]"),
    ({**BASE, "filters": [["exists?", "event:name", ["foo"]]]}, "filters[0][0]"),
    ({**BASE, "filters": [["is", "event:device", ["foo"]]]}, "filters[0][1]"),
    ({**BASE, "dimensions": "foobar"}, "dimensions"),
    ({**BASE, "dimensions": ["visitors"]}, "dimensions[0]"),
    ({**BASE, "dimensions": ["event:name", "event:name"]}, "dimensions"),
    ({**BASE, "order_by": [["event:name", "desc"]]}, "order_by[0][0]"),
    ({**BASE, "include": "foobar"}, "include"),
    ({**BASE, "date_range": ["2024-01-01T10:00:00", "2024-01-01T12:00:00"]}, "date_range[0]"),
    ({**BASE, "date_range": [f"{DAY0}T12:00:00Z", f"{DAY0}T10:00:00Z"]}, "date_range"),
    ({**BASE, "date_range": [DAY0, f"{DAY1}T00:00:00Z"]}, "date_range[1]"),
    ({**BASE, "filters": [["is", "event:page", ["/"], {"case_sensitive": "no"}]]},
     "filters[0][3].case_sensitive"),
    ({**BASE, "filters": [["is", "event:page", ["/"], {}, {}]]}, "filters[0]"),
    ({**BASE, "include": {"total_rows": "yes"}}, "include.total_rows"),
    ({**BASE, "include": {"imported": True}}, "include.imported"),
    ({**BASE, "colour": "red"}, "colour"),
])
def test_plausibles_refusals_are_400s_naming_the_field(client: TestClient, key: str,
                                                      body: dict[str, Any],
                                                      field: str) -> None:
    response = post(client, key, body)
    assert response.status_code == 400, response.text
    error = response.json()
    # Plausible's {"error": message}, and the field as the collector's extension.
    assert set(error) == {"error", "field"} and error["error"]
    assert error["field"] == field


def test_the_reasons_are_words(client: TestClient, key: str) -> None:
    def reason(body: dict[str, Any]) -> str:
        return str(post(client, key, body).json()["error"])

    assert reason({**BASE, "metrics": ["led_zeppelin"]}).startswith("unknown metric")
    assert reason({"site_id": SITE, "metrics": ["visitors"]}).startswith("required: ")
    assert "time dimension" in reason({**BASE, "include": {"time_labels": True}})
    assert "2-letter" in reason({**BASE, "filters": [["is", "visit:country", ["Germany"]]]})


def test_what_plausible_does_not_check_stays_accepted(client: TestClient, key: str) -> None:
    # The 2-letter rule is for is and is_not; views_per_visit by a visit dimension or time
    # is answered (Plausible refuses any dimension: docs/plausible.md says why not here).
    assert visitors(client, key, filters=[["contains", "visit:country", ["Germ"]]]) == 0
    found = answer(client, key, {**BASE, "metrics": ["views_per_visit"],
                                 "dimensions": ["visit:country"]})
    assert {row["dimensions"][0] for row in found["results"]} == {"DE", "FR", "US"}
    assert answer(client, key, {**BASE, "metrics": ["views_per_visit"],
                                "dimensions": ["time:day"]})["results"]


# ---------------------------------------------------------------- forms now accepted

def test_a_date_time_range_includes_both_ends_to_the_second(client: TestClient,
                                                            key: str) -> None:
    assert visitors(client, key, date_range=[f"{DAY0}T10:00:00+00:00",
                                             f"{DAY0}T10:59:59+00:00"]) == 2
    # The same hour written in another offset.
    assert visitors(client, key, date_range=[f"{DAY0}T12:00:00+02:00",
                                             f"{DAY0}T12:59:59+02:00"]) == 2
    # 12:00:00 is its last second, included: visitor 3 came then.
    assert visitors(client, key, date_range=[f"{DAY0}T10:15:00Z", f"{DAY0}T12:00:00Z"]) == 2
    assert visitors(client, key, date_range=[f"{DAY0}T10:15:00Z", f"{DAY0}T11:59:59Z"]) == 1


def test_a_date_time_range_of_whole_days_is_those_days(client: TestClient, key: str) -> None:
    by_dates = answer(client, key, {**PAGES, "include": {"time_labels": True},
                                    "dimensions": ["time:day"]})
    by_moments = answer(client, key, {**PAGES, "include": {"time_labels": True},
                                      "dimensions": ["time:day"],
                                      "date_range": [f"{DAY0}T00:00:00+00:00",
                                                     f"{DAY1}T23:59:59+00:00"]})
    assert by_moments == by_dates
    assert by_dates["meta"]["time_labels"] == TWO_DAYS
    assert by_dates["query"]["date_range"] == [f"{DAY0}T00:00:00+00:00",
                                               f"{DAY1}T23:59:59+00:00"]


def test_total_rows_counts_the_rows_before_pagination(client: TestClient, key: str) -> None:
    found = answer(client, key, {**PAGES, "pagination": {"limit": 1, "offset": 1},
                                 "include": {"total_rows": True}})
    assert len(found["results"]) == 1 and found["meta"]["total_rows"] == 4
    filtered = answer(client, key, {**PAGES, "include": {"total_rows": True},
                                    "filters": [["is", "visit:country", ["DE"]]]})
    assert filtered["meta"]["total_rows"] == len(filtered["results"]) == 2
    assert answer(client, key, {**BASE, "include": {"total_rows": True}})["meta"][
        "total_rows"] == 1
    assert "total_rows" not in answer(client, key, PAGES)["meta"]


def test_imports_are_never_included(client: TestClient, key: str) -> None:
    found = answer(client, key, {**BASE, "include": {"imports": True}})
    assert found["meta"]["imports_included"] is False
    assert found["meta"]["imports_skip_reason"] == "no_imported_data"
    assert found["results"] == answer(client, key, BASE)["results"]
    assert "imports_included" not in answer(client, key, BASE)["meta"]


@pytest.mark.parametrize(("condition", "exact", "either_case"), [
    (["is", "event:page", ["/blog/post"]], 1, 2),
    (["is_not", "event:page", ["/BLOG/POST"]], 4, 2),
    (["contains", "event:page", ["BLOG"]], 0, 2),
    (["contains_not", "event:page", ["BLOG"]], 4, 2),
    (["matches", "event:page", ["^/BLOG/"]], 0, 2),
    (["is", "visit:browser", ["firefox"]], 0, 1),
])
def test_case_sensitive_false_matches_either_case(client: TestClient, key: str,
                                                  condition: list[Any], exact: int,
                                                  either_case: int) -> None:
    assert visitors(client, key, filters=[condition]) == exact
    assert visitors(client, key, filters=[[*condition, {"case_sensitive": True}]]) == exact
    assert visitors(client, key, filters=[[*condition, {"case_sensitive": False}]]) == either_case


def test_case_sensitive_false_names_goals_in_either_case(client: TestClient, key: str) -> None:
    assert visitors(client, key, filters=[["is", "event:goal", ["signup"],
                                           {"case_sensitive": False}]]) == 1
    refused = post(client, key, {**BASE, "filters": [["is", "event:goal", ["signup"]]]})
    assert refused.status_code == 400 and refused.json()["field"] == "filters[0][2][0]"


def local_range(first: date, last: date) -> list[str]:
    return [f"{first.isoformat()}T00:00:00+00:00", f"{last.isoformat()}T23:59:59+00:00"]


def test_periods_are_plausibles(client: TestClient, key: str) -> None:
    today = datetime.now(UTC).date()
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)

    def echoed(period: str) -> list[str]:
        return list(answer(client, key, {**BASE, "date_range": period})["query"]["date_range"])

    # month and year: the whole calendar period, days to come included.
    assert echoed("month") == local_range(today.replace(day=1), next_month - timedelta(days=1))
    assert echoed("year") == local_range(today.replace(month=1, day=1),
                                         today.replace(month=12, day=31))
    assert echoed("91d") == local_range(today - timedelta(days=90), today)
    for period in ("28d", "30d", "91d"):  # the traffic is 20 days old
        assert visitors(client, key, date_range=period) == 4


# ---------------------------------------------------------------- the echo, posted again

REPOSTED = [
    PAGES,
    {**BASE, "date_range": "7d", "dimensions": ["time:day"],
     "include": {"time_labels": True, "total_rows": True}},
    {**BASE, "date_range": [f"{DAY0}T10:15:00+02:00", f"{DAY0}T14:00:00+02:00"],
     "dimensions": ["time:hour"], "include": {"imports": True}},
    {**PAGES, "filters": [["or", [["is", "event:page", ["/BLOG/POST"], {"case_sensitive": False}],
                                  ["not", ["is", "visit:country", ["US"]]]]]],
     "order_by": [["event:page", "asc"]], "pagination": {"limit": 2, "offset": 1}},
    {**BASE, "metrics": ["visitors", "conversion_rate"],
     "filters": [["is", "event:goal", ["Signup"]]], "include": {"comparison": "previous_period"}},
]


@pytest.mark.parametrize("body", REPOSTED)
def test_the_echoed_query_posted_again_asks_the_same(client: TestClient, key: str,
                                                     body: dict[str, Any]) -> None:
    first = answer(client, key, body)
    again = answer(client, key, first["query"])
    assert again == first
    assert validator().is_valid(first["query"])


def test_the_echo_lists_only_the_include_options_that_are_on(client: TestClient,
                                                            key: str) -> None:
    assert answer(client, key, BASE)["query"]["include"] == {}
    found = answer(client, key, {**BASE, "dimensions": ["time:day"],
                                 "include": {"time_labels": True, "total_rows": False}})
    assert found["query"]["include"] == {"time_labels": True}
    # A comparison is echoed in the form it was asked in: Plausible's, or the older one.
    for include in ({"comparisons": {"mode": "previous_period"}},
                    {"comparison": "previous_period"},
                    {"comparisons": {"mode": "year_over_year", "match_day_of_week": True}}):
        assert answer(client, key, {**BASE, "include": include})["query"]["include"] == include

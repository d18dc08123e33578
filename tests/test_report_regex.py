"""``matches`` filters: RE2 patterns checked by RE2 and matched by ClickHouse, never by Python.

A pattern comes from anyone with a key or a share link; Python's backtracking ``re``
took 18 s over goal names on ``(?:.|.|.|.|.)*Z`` and held the GIL, so every event
sent meanwhile waited. These tests pin the semantics of the filters, the checks
on a pattern, and that the catastrophic pattern answers at once with ingest running.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from collector.errors import InvalidField
from collector.reports.auth import create_key
from collector.reports.builder import SiteContext, build, plan
from collector.reports.goals import EVENT, PAGE, Goal, add_goal
from collector.reports.patterns import MAX_PATTERN_LENGTH
from collector.reports.query import period_of, run_report
from collector.reports.request import parse_query
from collector.storage import Store
from tests.conftest import CHROME_UA, flush, running_app
from tests.reporting_data import SITE, at, day, make_event, sample_site_events, store_events

NOW = datetime.combine(day(5), datetime.min.time(), UTC) + timedelta(hours=12)
TWO_DAYS = [day(0).isoformat(), day(1).isoformat()]
# A long goal name: the catastrophic pattern backtracks 5^37 ways over it in Python's re.
GUIDE = "Download the enterprise pricing guide"
GOALS = (Goal("Signup", EVENT, "Signup"), Goal("Visit /blog/*", PAGE, "/blog/*"),
         Goal(GUIDE, EVENT, "Download"))
CATASTROPHIC = "(?:.|.|.|.|.)*Z"


@pytest.fixture(scope="module", autouse=True)
def traffic(store: Store) -> Iterator[None]:
    store_events(store, sample_site_events())
    yield


def visitors(store: Store, *filters: Any) -> Any:
    spec = parse_query({"site_id": SITE, "date_range": TWO_DAYS, "metrics": ["visitors"],
                        "filters": list(filters)})
    found = run_report(store, spec, SiteContext(SITE, "UTC", GOALS), NOW)
    return found.results[0]["metrics"][0]


@pytest.mark.parametrize(("patterns", "expected"), [
    (["^Sign"], 2),  # visitors 1 and 5 signed up
    (["(?i)^signup$"], 2),
    (["blog"], 3),  # the goal "Visit /blog/*": visitors 2, 3 and 6
    (["^Sign", "guide$"], 3),  # Signup or the guide's download (visitor 4)
    (["^Visit /blog/\\*$"], 3),
    (["nothing like it"], 0),
])
def test_goal_patterns_select_goals_by_name(store: Store, patterns: list[str],
                                            expected: int) -> None:
    assert visitors(store, ["matches", "event:goal", patterns]) == expected


def test_a_goal_pattern_means_what_naming_the_goals_means(store: Store) -> None:
    for operator in ("matches", "matches_not"):
        named = operator.replace("matches", "is")
        assert visitors(store, [operator, "event:goal", ["^Signup$", "guide"]]) == \
            visitors(store, [named, "event:goal", ["Signup", GUIDE]])


def test_page_patterns(store: Store) -> None:
    assert visitors(store, ["matches", "event:page", ["^/blog/"]]) == 3
    assert visitors(store, ["matches", "event:page", ["^/$", "^/pricing$"]]) == 4
    assert visitors(store, ["matches_not", "event:page", ["^/"]]) == 0


def test_goal_breakdown_under_a_goal_pattern(store: Store) -> None:
    spec = parse_query({"site_id": SITE, "date_range": TWO_DAYS, "metrics": ["visitors"],
                        "dimensions": ["event:goal"],
                        "filters": [["matches", "event:goal", ["guide"]]]})
    found = run_report(store, spec, SiteContext(SITE, "UTC", GOALS), NOW)
    assert found.results == [{"dimensions": [GUIDE], "metrics": [1]}]


@pytest.mark.parametrize("dimension", ["event:goal", "event:page"])
@pytest.mark.parametrize(("pattern", "reason"), [
    ("(unclosed", "missing )"),
    ("(?=ahead)", "no lookarounds"),
    ("(?<!behind)x", "no lookarounds"),
    ("(a)\\1", "invalid escape"),
    ("x" * (MAX_PATTERN_LENGTH + 1), f"at most {MAX_PATTERN_LENGTH} characters"),
])
def test_a_pattern_is_checked_by_re2_and_refused_naming_the_field(
        store: Store, dimension: str, pattern: str, reason: str) -> None:
    # Two top-level filters: a goal filter below or/and/not is refused first (Plausible's rule).
    with pytest.raises(InvalidField) as caught:
        visitors(store, ["is", "visit:country", ["DE"]], ["matches", dimension, ["^ok$", pattern]])
    assert caught.value.field == "filters[1][2][1]"
    assert reason in caught.value.reason


def test_the_longest_pattern_allowed_is_taken(store: Store) -> None:
    assert visitors(store, ["matches", "event:page", ["x" * MAX_PATTERN_LENGTH]]) == 0


@pytest.fixture
def python_regex_refuses_the_pattern(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Fail any use of Python's ``re`` on the catastrophic pattern (it would hang), and
    record the patterns ``re`` compiled meanwhile."""
    compiled: list[str] = []
    original = re._compile  # type: ignore[attr-defined]

    def guarded(pattern: Any, flags: Any) -> Any:
        compiled.append(str(pattern))
        if CATASTROPHIC in str(pattern):
            raise AssertionError("Python's re was handed the request's pattern")
        return original(pattern, flags)

    monkeypatch.setattr(re, "_compile", guarded)
    return compiled


@pytest.mark.parametrize("dimension", ["event:goal", "event:page"])
def test_the_pattern_goes_to_clickhouse_as_a_bound_value(
        store: Store, dimension: str, python_regex_refuses_the_pattern: list[str]) -> None:
    spec = parse_query({"site_id": SITE, "date_range": TWO_DAYS, "metrics": ["visitors"],
                        "filters": [["matches", dimension, [CATASTROPHIC]]]})
    context = SiteContext(SITE, "UTC", GOALS)
    period = period_of(store, spec, context, NOW)
    built = build(spec, context, period, plan(spec, period))
    bound = [value for value in built.parameters.values()
             if value == CATASTROPHIC or (isinstance(value, list) and CATASTROPHIC in value)]
    assert len(bound) == 1 and "match(" in built.sql
    assert CATASTROPHIC not in built.sql


@pytest.mark.parametrize("dimension", ["event:goal", "event:page"])
def test_the_catastrophic_pattern_answers_while_ingest_goes_on(
        store: Store, engine_url: str, dimension: str,
        python_regex_refuses_the_pattern: list[str]) -> None:
    for goal in GOALS:
        add_goal(store, SITE, goal.kind, goal.pattern, goal.name)
    key = create_key(store, SITE)
    body = {"site_id": SITE, "date_range": "all", "metrics": ["visitors"],
            "filters": [["matches", dimension, [CATASTROPHIC]]]}
    answers: list[Any] = []
    with running_app(store, engine_url) as client:
        def ask() -> None:
            answers.append(client.post("/api/v2/query", json=body,
                                       headers={"Authorization": f"Bearer {key}"}))

        asking = threading.Thread(target=ask)
        asking.start()
        events = [client.post("/api/event", headers={"User-Agent": CHROME_UA}, json={
            "n": "pageview", "d": SITE,
            "u": f"https://{SITE}/pricing/enterprise-plan-comparison/{index}"})
            for index in range(20)]
        asking.join(timeout=60)
        assert not asking.is_alive(), "the report did not finish"
        flush(client)
    assert [event.status_code for event in events] == [202] * 20
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].json()["results"] == [{"dimensions": [], "metrics": [0]}]
    assert not any(CATASTROPHIC in pattern for pattern in python_regex_refuses_the_pattern)


def test_a_glob_goal_matches_paths_literally(store: Store) -> None:
    # A glob's characters other than * are literal: "." is a dot, not any character.
    store_events(store, [make_event(at("10:00", 3), 40, "/guide.pdf"),
                         make_event(at("10:01", 3), 41, "/guideXpdf"),
                         make_event(at("10:02", 3), 42, "/docs/a/b.html")])
    goals = (Goal("Guide", PAGE, "/guide.pdf"), Goal("Docs", PAGE, "/docs/**"),
             Goal("Top docs", PAGE, "/docs/*"))
    spec = parse_query({"site_id": SITE, "date_range": [day(3).isoformat()] * 2,
                        "metrics": ["visitors"], "dimensions": ["event:goal"]})
    found = run_report(store, spec, SiteContext(SITE, "UTC", goals), NOW)
    assert found.results == [{"dimensions": ["Docs"], "metrics": [1]},
                             {"dimensions": ["Guide"], "metrics": [1]}]

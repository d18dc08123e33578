"""Share links cannot single anyone out (issue #14), on traffic sent through ``/api/event``.

One visitor (the target) has a page, a referrer, campaign tags, a browser, a language, a
screen class, a custom event, a property and a goal nobody else has, at an hour nobody
else visits; a crowd of 30 visitors shares everything else. Each attack the issue
measured against a share token is here: the key holder's exact answer shows what the
share link used to be told, and the share link now gets nothing about the target. Then
the noise (its spread against the stated epsilon), its determinism, and the budget.
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from starlette.testclient import TestClient

from collector.cli import cli
from collector.reports.auth import SHARE, create_key
from collector.reports.dimensions import DIMENSIONS
from collector.reports.goals import EVENT, add_goal
from collector.reports.noise import variance
from collector.reports.thresholds import DEFAULT_PUBLIC_K, set_share_budget
from collector.sites import add_site
from collector.storage import Store
from tests.conftest import CHROME_UA, flush, running_app

SITE = "share-privacy.example"
DAY = datetime.now(UTC).date() - timedelta(days=5)  # recent: older rows meet the TTL
CROWD = 30
TARGET_PAGE = "/secret-rare-page"
TARGET_EXIT = "/secret-rare-exit"
TARGET_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:99.0) Gecko/20100101 Firefox/99.0"
TAGS = ("?utm_source=rare-source&utm_medium=rare-medium&utm_campaign=rare-campaign"
        "&utm_term=rare-term&utm_content=rare-content")
K = DEFAULT_PUBLIC_K
CLI_DATABASE = "collector"  # what the command line opens on a chdb:// store URL
ALL_METRICS = ["visitors", "visits", "pageviews", "events", "bounce_rate", "visit_duration"]
# Every dimension a filter may name (time buckets are dimensions only), and a property.
FILTERABLE = [name for name in DIMENSIONS if not name.startswith("time")] \
    + ["event:props:rare_key"]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(clock: str, day_offset: int = 0) -> float:
    return datetime.combine(DAY + timedelta(days=day_offset), time.fromisoformat(clock),
                            UTC).timestamp()


QUERY_TIME = at("12:00", 1)


def day(offset: int = 0) -> str:
    return (DAY + timedelta(days=offset)).isoformat()


def send(client: TestClient, path: str, agent: str, name: str = "pageview",
         referrer: str | None = None, props: dict[str, str] | None = None,
         language: str = "en", width: int = 1920) -> None:
    response = client.post("/api/event", json={
        "n": name, "u": f"https://{SITE}{path}", "d": SITE, "r": referrer, "w": width,
        "p": props or {}}, headers={"User-Agent": agent, "Accept-Language": language})
    assert response.status_code == 202 and "x-collector-dropped" not in response.headers, \
        response.headers


def _send_traffic(client: TestClient, clock: Clock) -> None:
    clock.now = at("08:00", -1)  # the day before: one visitor alone
    send(client, "/lonely", f"{CHROME_UA} Lonely")
    target = {"language": "is", "width": 400}
    clock.now = at("03:00")
    send(client, TARGET_PAGE + TAGS, TARGET_AGENT, referrer="https://rare-referrer.example/a",
         **target)
    clock.now = at("03:02")
    send(client, TARGET_PAGE, TARGET_AGENT, name="RareEvent", props={"rare_key": "rare-value"},
         **target)
    clock.now = at("03:04")
    send(client, TARGET_EXIT, TARGET_AGENT, **target)
    for number in range(CROWD):
        agent = f"{CHROME_UA} Crowd/{number}"
        clock.now = at("10:00") + 20 * number
        send(client, "/?utm_source=news", agent, referrer="https://www.google.com/")
        clock.now += 60
        send(client, "/pricing", agent)
        send(client, "/pricing", agent, name="Signup", props={"plan": "pro"})


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock(QUERY_TIME)


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str, clock: Clock) -> Iterator[TestClient]:
    add_site(store, SITE)
    add_goal(store, SITE, EVENT, "RareEvent")
    # A budget no test below reaches, but the one that spends it on purpose.
    set_share_budget(store, SITE, 1.0, 1000.0)
    with running_app(store, engine_url, clock=clock) as running:
        _send_traffic(running, clock)
        flush(running)
        clock.now = QUERY_TIME
        yield running


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


@pytest.fixture(scope="module")
def share(store: Store) -> str:
    return create_key(store, SITE, SHARE)


def post(client: TestClient, token: str, body: dict[str, Any], **headers: str) -> Any:
    return client.post("/api/v2/query", json=body,
                       headers={"Authorization": f"Bearer {token}", **headers})


def answer(client: TestClient, token: str, body: dict[str, Any]) -> Any:
    response = post(client, token, body)
    assert response.status_code == 200, response.text
    return response.json()


def query(metrics: list[str], *filters: Any, dimensions: tuple[str, ...] = (),
          date_range: Any = None, **extra: Any) -> dict[str, Any]:
    return {"site_id": SITE, "date_range": date_range or [day(), day()], "metrics": metrics,
            "dimensions": list(dimensions), "filters": list(filters), **extra}


def visitors(client: TestClient, key: str, *filters: Any) -> int:
    return int(answer(client, key, query(["visitors"], *filters))["results"][0]["metrics"][0])


def isolating(client: TestClient, key: str, dimension: str) -> list[Any]:
    """Filters on ``dimension`` that select the target alone: its rarest value, and the
    target's page too where no value of the dimension is the target's own (no geo data)."""
    on_page = ["is", "event:page", [TARGET_PAGE]]
    values = [row["dimensions"][0] for row in answer(client, key, query(
        ["visitors"], on_page, dimensions=(dimension,)))["results"]]
    rarest = min(values, key=lambda value: visitors(client, key, ["is", dimension, [value]]))
    alone = [["is", dimension, [rarest]]]
    return alone if visitors(client, key, *alone) == 1 else [*alone, on_page]


def suppressed(client: TestClient, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """A share answer of one row whose every metric is suppressed, and its meta."""
    public = answer(client, token, body)
    assert [row["metrics"] for row in public["results"]] == [[None] * len(body["metrics"])]
    assert public["meta"]["suppressed"]["results"] == [0]
    assert f"fewer than {K} visitors" in public["meta"]["suppressed"]["reason"]
    return dict(public)


# ---------------------------------------------------------------- isolation

@pytest.mark.parametrize("dimension", FILTERABLE)
def test_a_filter_isolating_one_visitor_tells_a_share_link_nothing(
        client: TestClient, key: str, share: str, dimension: str) -> None:
    filters = isolating(client, key, dimension)
    body = query(ALL_METRICS, *filters)
    # What a share link was told before: that one visitor's visits, pages, bounce and time.
    exact = answer(client, key, body)["results"][0]["metrics"]
    assert exact[0] == 1 and exact[2] >= 1
    suppressed(client, share, body)


def test_the_bounce_rate_and_duration_of_a_single_visit_are_not_shown(
        client: TestClient, key: str, share: str) -> None:
    body = query(["bounce_rate", "visit_duration"], ["is", "visit:entry_page", [TARGET_PAGE]])
    assert answer(client, key, body)["results"][0]["metrics"] == [0, 240]
    suppressed(client, share, body)


def test_the_hour_of_a_single_visit_is_not_shown(client: TestClient, key: str,
                                                 share: str) -> None:
    body = query(["visitors"], dimensions=("time:hour",))
    exact = {row["dimensions"][0][11:13]: row["metrics"][0]
             for row in answer(client, key, body)["results"]}
    assert exact == {"03": 1, "10": CROWD}
    public = answer(client, share, body)
    hours = {row["dimensions"][0][11:13]: row["metrics"][0] for row in public["results"]}
    # Every hour is answered, so an empty one looks like a rare one: both null.
    assert len(hours) == 24 and hours["10"] is not None
    assert {hour for hour, value in hours.items() if value is None} == set(hours) - {"10"}
    assert len(public["meta"]["suppressed"]["results"]) == 23


def test_names_seen_by_one_visitor_are_not_found_by_prefix_queries(
        client: TestClient, key: str, share: str) -> None:
    def asked(token: str, prefix: str) -> Any:
        return answer(client, token, query(
            ["visitors"], ["is_not", "event:page", ["/", "/pricing"]],
            ["matches", "event:page", [f"^{re.escape(prefix)}"]]))

    prefixes = ["/s", "/se", "/sec", "/secr", "/x", "/a"]
    # A key holder's exact counts spell out the name a prefix at a time.
    assert [asked(key, prefix)["results"][0]["metrics"][0] for prefix in prefixes] == [
        1, 1, 1, 1, 0, 0]
    # A share link gets the same nothing whether the prefix matches or not.
    public = [asked(share, prefix) for prefix in prefixes]
    assert {str((body["results"], body["meta"]["suppressed"])) for body in public} == {
        str(([{"dimensions": [], "metrics": [None]}],
             public[0]["meta"]["suppressed"]))}
    pages = answer(client, share, query(["visitors"], dimensions=("event:page",)))["results"]
    assert sorted(row["dimensions"][0] for row in pages) == ["(other)", "/", "/pricing"]


def test_differencing_two_totals_no_longer_gives_exactly_one(
        client: TestClient, key: str, share: str) -> None:
    everyone_but = ["is_not", "event:page", [TARGET_PAGE, TARGET_EXIT]]
    ranges = [[day(-first), day(last)] for first in range(10) for last in (0, 1)]
    exact = [visitors_on(client, key, span) - visitors_on(client, key, span, everyone_but)
             for span in ranges]
    assert exact == [1] * len(ranges)  # what the issue measured: the target, every time
    differences = [visitors_on(client, share, span) - visitors_on(client, share, span,
                                                                  everyone_but)
                   for span in ranges]
    # Each total carries its own noise of scale 1 (epsilon 1 on a visitors count): the
    # difference varies around the truth instead of being it.
    expected = 2 * variance(Fraction(1))
    assert len(set(differences)) > 1
    assert 0.2 * expected < statistics.pvariance(differences) < 5 * expected


def visitors_on(client: TestClient, token: str, span: list[str], *filters: Any) -> int:
    found = answer(client, token, query(["visitors"], *filters, date_range=span))
    value = found["results"][0]["metrics"][0]
    assert value is not None
    return int(value)


def test_realtime_visitors_are_thresholded_and_noised_for_share_links(
        client: TestClient, key: str, share: str, clock: Clock) -> None:
    def realtime(token: str) -> Any:
        response = client.get("/api/v1/stats/realtime/visitors", params={"site_id": SITE},
                              headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200, response.text
        return response.json()

    try:
        clock.now = at("03:06")
        assert realtime(key) == 1  # the target alone, as a share link was told before
        assert realtime(share) is None  # its window, 03:00 to 03:05, had one visitor
        clock.now = at("10:05:30")
        assert realtime(key) >= K
        first = realtime(share)  # 10:00 to 10:05: the crowd's first fifteen
        spent = client.app.state.reports.budget.spent_today(  # type: ignore[attr-defined]
            share.split("_")[1])
        clock.now = at("10:09:59")
        assert isinstance(first, int) and realtime(share) == first  # the same window
        assert client.app.state.reports.budget.spent_today(  # type: ignore[attr-defined]
            share.split("_")[1]) == spent
    finally:
        clock.now = QUERY_TIME


def test_a_comparison_period_of_one_visitor_is_suppressed(client: TestClient, key: str,
                                                          share: str) -> None:
    body = query(["visitors", "visits"], include={"comparison": "previous_period"})
    exact = answer(client, key, body)["results"][0]
    assert exact["comparison"]["metrics"] == [1, 1]  # the lone visitor of the day before
    public = answer(client, share, body)
    row = public["results"][0]
    assert None not in row["metrics"]
    assert row["comparison"]["metrics"] == [None, None]
    assert row["comparison"]["change"] == [None, None]
    assert public["meta"]["suppressed"]["comparison"] == [0]


def test_csv_for_share_links_leaves_suppressed_cells_empty(client: TestClient, key: str,
                                                           share: str) -> None:
    body = query(["visitors", "pageviews"], ["is", "event:page", [TARGET_PAGE]])
    assert post(client, key, body, Accept="text/csv").text.splitlines() == [
        "visitors,pageviews", "1,1"]
    assert post(client, share, body, Accept="text/csv").text.splitlines() == [
        "visitors,pageviews", ","]
    hourly = post(client, share, query(["visitors"], dimensions=("time:hour",)),
                  Accept="text/csv").text.splitlines()
    assert f"{day()} 03:00:00," in hourly and len(hourly) == 25


# ---------------------------------------------------------------- what is still shown

def test_breakdowns_keep_folding_and_show_noisy_consistent_counts(
        client: TestClient, share: str) -> None:
    found = answer(client, share, query(["visitors", "visits", "pageviews", "bounce_rate",
                                         "views_per_visit"], dimensions=("visit:source",)))
    rows = {row["dimensions"][0]: row["metrics"] for row in found["results"]}
    # The crowd's utm_source names its row; the target's referrer is folded, alone.
    assert set(rows) == {"news", "(other)"}
    assert rows["(other)"] == [None] * 5
    counted, visits, pageviews, bounce_rate, _ = rows["news"]
    assert 0 <= counted <= visits and pageviews >= 0 and 0 <= bounce_rate <= 100
    privacy = found["meta"]["privacy"]
    assert privacy["k"] == K and privacy["epsilon_per_answer"] == 1.0
    # Four counts (visitors, visits, pageviews, and bounces for the rate): epsilon / 4 each.
    assert privacy["epsilon_per_count"] == 0.25


# ---------------------------------------------------------------- the noise, statistically

def test_noise_over_many_share_links_has_the_spread_the_stated_epsilon_gives(
        client: TestClient, store: Store) -> None:
    # One count (visitors of the day, 31), one row: sensitivity 1, epsilon 1, scale 1.
    tokens = [create_key(store, SITE, SHARE) for _ in range(200)]
    body = query(["visitors"])
    released = [answer(client, token, body)["results"][0]["metrics"][0] for token in tokens]
    expected = variance(Fraction(1))  # 1.84
    mean, spread = statistics.fmean(released), statistics.pvariance(released, CROWD + 1)
    assert abs(mean - (CROWD + 1)) < 4 * (expected / len(released)) ** 0.5
    # A scale twice too large gives 4.3 times this variance, half too small 0.17 times.
    assert 0.45 * expected < spread < 2.2 * expected
    assert not 0.45 * expected < variance(Fraction(2)) < 2.2 * expected
    assert not 0.45 * expected < variance(Fraction(1, 2)) < 2.2 * expected


# ---------------------------------------------------------------- determinism and budget

def test_the_same_question_gets_the_same_answer_and_spends_nothing_again(
        client: TestClient, store: Store, engine_url: str, clock: Clock) -> None:
    token = create_key(store, SITE, SHARE)
    body = query(["visitors", "pageviews"], dimensions=("event:page",))
    first, second = answer(client, token, body), answer(client, token, body)
    assert first["results"] == second["results"]
    assert (first["meta"]["privacy"]["epsilon"], first["meta"]["privacy"]["repeated"]) == (
        1.0, False)
    assert (second["meta"]["privacy"]["epsilon"], second["meta"]["privacy"]["repeated"]) == (
        0.0, True)
    remaining = first["meta"]["privacy"]["epsilon_remaining_today"]
    assert second["meta"]["privacy"]["epsilon_remaining_today"] == remaining
    # Order, page and the metrics derived from the same counts change no count.
    paged = answer(client, token, {**body, "metrics": ["pageviews", "visitors"],
                                   "order_by": [["event:page", "asc"]],
                                   "pagination": {"limit": 1, "offset": 1}})
    by_page = {tuple(row["dimensions"]): row["metrics"] for row in first["results"]}
    assert [list(reversed(by_page[tuple(row["dimensions"])])) for row in paged["results"]] \
        == [row["metrics"] for row in paged["results"]]
    assert paged["meta"]["privacy"]["epsilon"] == 0.0
    # After a restart (and in a later hour) the same data gives the same noise, for free:
    # the secret and what was spent are in the store.
    clock.now = QUERY_TIME + 3600
    try:
        with running_app(store, engine_url, clock=clock) as restarted:
            again = answer(restarted, token, body)
    finally:
        clock.now = QUERY_TIME
    assert again["results"] == first["results"] and again["meta"]["privacy"]["epsilon"] == 0


def test_a_spent_budget_answers_429_until_midnight_and_keys_are_never_limited(
        client: TestClient, store: Store, key: str, clock: Clock) -> None:
    token = create_key(store, SITE, SHARE)
    questions = [query(["visitors"], date_range=[day(-offset), day()]) for offset in range(5)]
    set_budget(client, store, 1.0, 3.0)
    try:
        remaining = [answer(client, token, body)["meta"]["privacy"]["epsilon_remaining_today"]
                     for body in questions[:3]]
        assert remaining == [2.0, 1.0, 0.0]
        refused = post(client, token, questions[3])
        assert refused.status_code == 429
        # QUERY_TIME is noon UTC: the budget refills twelve hours later.
        assert refused.headers["retry-after"] == str(12 * 3600)
        assert "privacy budget" in refused.json()["error"]
        assert answer(client, token, questions[0])["meta"]["privacy"]["repeated"]  # free
        for offset in range(12):  # key holders are never counted, let alone refused
            assert post(client, key, query(["visitors"], date_range=[day(-offset),
                                                                     day()])).status_code == 200
        clock.now = at("00:00:01", 2)
        assert answer(client, token, questions[3])["meta"]["privacy"]["epsilon"] == 1.0
    finally:
        clock.now = QUERY_TIME
        set_budget(client, store, 1.0, 1000.0)


def test_collectors_sharing_a_store_spend_one_budget_per_token(
        client: TestClient, store: Store, engine_url: str, clock: Clock) -> None:
    token = create_key(store, SITE, SHARE)
    questions = [query(["visits"], date_range=[day(-offset), day()]) for offset in range(4)]
    set_budget(client, store, 1.0, 2.0)
    try:
        with running_app(store, engine_url, clock=clock) as other:
            assert post(client, token, questions[0]).status_code == 200
            assert post(other, token, questions[1]).status_code == 200
            assert post(other, token, questions[2]).status_code == 429
            assert post(client, token, questions[3]).status_code == 429
    finally:
        set_budget(client, store, 1.0, 1000.0)


def set_budget(client: TestClient, store: Store, epsilon: float, epsilon_day: float) -> None:
    set_share_budget(store, SITE, epsilon, epsilon_day)
    client.app.state.reports.site_contexts.forget()  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the command line

def test_the_budget_is_set_per_site_and_stated_by_collector_check(
        store: Store, engine_url: str, tmp_path: Path) -> None:
    env = {"COLLECTOR_CLICKHOUSE_URL": engine_url, "COLLECTOR_DATA_DIR": str(tmp_path),
           "COLLECTOR_LOG_LEVEL": "warning"}

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env)

    def parsed(*args: str) -> Any:
        result = invoke(*args, "--json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    store.command(f"DROP DATABASE IF EXISTS {CLI_DATABASE}")
    try:
        assert invoke("sites", "add", "cli.example").exit_code == 0
        assert parsed("sites", "privacy", "cli.example") == {
            "site": "cli.example", "public_k": K, "epsilon": 1.0, "epsilon_day": 30.0,
            "share_links": []}
        link = parsed("keys", "create", "--site", "cli.example", "--share")["key_id"]
        changed = parsed("sites", "privacy", "cli.example", "--epsilon", "0.5",
                         "--daily-epsilon", "10")
        assert changed == {"site": "cli.example", "public_k": K, "epsilon": 0.5,
                           "epsilon_day": 10.0,
                           "share_links": [{"key_id": link, "spent_today": 0.0}]}
        refused = invoke("sites", "privacy", "cli.example", "--epsilon", "2",
                         "--daily-epsilon", "1")
        assert refused.exit_code == 1 and "daily epsilon" in refused.stderr
        assert parsed("check")["share_links"] == [changed]
        assert (f"Share links of cli.example: rows of {K}+ visitors, noise epsilon 0.5 per "
                "answer, 10 per link and UTC day; 1 active") in invoke("check").stdout
        assert (f"Public share links of cli.example show only numbers about at least {K} "
                "visitors") in invoke("check", "--markdown").stdout
    finally:
        store.command(f"DROP DATABASE IF EXISTS {CLI_DATABASE}")

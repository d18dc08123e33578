"""Report queries bounded by COLLECTOR_REPORT_MAX_*: a reason and 400 or 503, never a 500.

ClickHouse stops a query at ``max_rows_to_read``, ``max_memory_usage`` or
``max_execution_time``, set on every SELECT of the reports' store (the embedded
engine honours them per query); the store says which limit it was, and the app
answers 400 for a report that asks for too much, 503 with ``Retry-After`` for one
that ran out of time. The reports' store has several connections, so one slow
report does not hold up the others, nor the readiness probe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.app import REPORT_CONNECTIONS
from collector.errors import QueryLimitExceeded
from collector.event import EVENT_COLUMNS
from collector.reports.auth import create_key
from collector.storage import QueryLimits, Store, migrate, open_store
from tests.conftest import fresh_database_name, running_app
from tests.reporting_data import SITE, make_event, sample_site_events, store_events

UNBOUNDED = QueryLimits(seconds=600, memory_bytes=8 << 30, rows=10 ** 12)
# Each query goes past exactly one of its limits.
OVER_THE_LIMIT = [
    ("rows", QueryLimits(600, 8 << 30, rows=1000), "SELECT count() FROM numbers(100000)", 1000),
    ("memory", QueryLimits(600, 16 << 20, 10 ** 12),
     "SELECT uniqExact(number) FROM numbers(20000000)", 16 << 20),
    ("time", QueryLimits(0.2, 8 << 30, 10 ** 12),
     "SELECT count() FROM numbers(100000000000) WHERE NOT ignore(sipHash64(number))", 0.2),
]


def bounded(store: Store, limits: QueryLimits) -> Store:
    return open_store(store.url, store.database, limits=limits)


@pytest.mark.parametrize(("limit", "limits", "sql", "allowed"), OVER_THE_LIMIT,
                         ids=[case[0] for case in OVER_THE_LIMIT])
def test_a_query_over_a_limit_is_stopped_and_says_which(
        store: Store, limit: str, limits: QueryLimits, sql: str, allowed: float) -> None:
    limited = bounded(store, limits)
    with pytest.raises(QueryLimitExceeded) as caught:
        limited.rows(sql)
    assert (caught.value.limit, caught.value.allowed) == (limit, allowed)
    if limit == "rows":  # the same query without the limit runs: the limit stopped it
        assert bounded(store, UNBOUNDED).rows(sql) == [(100000,)]
        assert store.rows(sql) == [(100000,)]


def test_no_caller_loosens_the_limits_and_streams_are_bounded_too(store: Store) -> None:
    limited = bounded(store, QueryLimits(600, 8 << 30, rows=1000))
    with pytest.raises(QueryLimitExceeded):
        limited.rows("SELECT count() FROM numbers(100000)", settings={"max_rows_to_read": 0})
    with pytest.raises(QueryLimitExceeded):
        list(limited.stream_columns("SELECT number FROM numbers(100000)"))
    assert limited.rows("SELECT count() FROM numbers(10)") == [(10,)]


# ---- over HTTP -------------------------------------------------------------------------

def today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    # Few rows in the tables a key check and a site's settings read (one key, no site,
    # no goal), many in the reports': a small row limit stops the reports only.
    now = int(time.time() * 1000)
    store_events(store, [*sample_site_events(),
                         *(make_event(now - index * 1000, 100 + index) for index in range(40))])
    store.command("INSERT INTO drops (site, hour, reason, count) SELECT {site:String}, "
                  "toStartOfHour(now()) - INTERVAL number HOUR, 'bot', 1 FROM numbers(30)",
                  {"site": SITE})
    return create_key(store, SITE)


def ask(client: TestClient, key: str, endpoint: str) -> Any:
    headers = {"Authorization": f"Bearer {key}"}
    body = {"site_id": SITE, "date_range": [today(), today()]}
    if endpoint == "realtime":
        return client.get(f"/api/v1/stats/realtime/visitors?site_id={SITE}", headers=headers)
    if endpoint == "query":
        body.update(metrics=["visitors"], dimensions=["event:page"])
    return client.post(f"/api/v2/{endpoint}", json=body, headers=headers)


ENDPOINTS = ["query", "drops", "properties", "realtime"]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_report_endpoint_answers_400_when_it_would_read_too_many_rows(
        store: Store, engine_url: str, key: str, endpoint: str) -> None:
    with running_app(store, engine_url, report_max_rows=12) as client:
        response = ask(client, key, endpoint)
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "this report would read more stored rows than the collector allows one "
                 "query (12): ask about a shorter date range", "limit": "rows"}
    with running_app(store, engine_url) as client:  # the default limits let it through
        assert ask(client, key, endpoint).status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_report_out_of_time_answers_503_with_retry_after(
        store: Store, engine_url: str, key: str, endpoint: str) -> None:
    with running_app(store, engine_url, report_max_seconds=0.000001) as client:
        response = ask(client, key, endpoint)
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["limit"] == "time"
    assert "try again later" in response.json()["error"]


@pytest.fixture(scope="module")
def large_site(engine_url: str) -> Iterator[tuple[Store, str]]:
    """60,000 pageviews of as many pages: a breakdown needs tens of MB for its groups."""
    big = open_store(engine_url, fresh_database_name("report limits large"))
    migrate(big)
    columns = ", ".join(EVENT_COLUMNS[:7])
    big.command(f"INSERT INTO events ({columns}) SELECT {{site:String}}, "
                "now64(3) - INTERVAL number * 10 MILLISECOND, 'pageview', number, number, "
                "{site:String}, concat('/page/', toString(number)) FROM numbers(60000)",
                {"site": SITE})
    yield big, create_key(big, SITE)


def test_a_report_needing_too_much_memory_answers_400(large_site: tuple[Store, str],
                                                      engine_url: str) -> None:
    big, key = large_site
    headers = {"Authorization": f"Bearer {key}"}
    with running_app(big, engine_url, report_max_memory=4 << 20) as client:
        response = client.post("/api/v2/query", headers=headers, json={
            "site_id": SITE, "date_range": "all", "metrics": ["visitors"],
            "dimensions": ["event:page"]})
        assert response.status_code == 400, response.text
        assert response.json()["limit"] == "memory"
        assert "4,194,304 bytes" in response.json()["error"]
        # The same app answers what fits: the visitors of every page, without the pages.
        page = client.post("/api/v2/query", headers=headers, json={
            "site_id": SITE, "date_range": "all", "metrics": ["visitors"],
            "filters": [["is", "event:name", ["pageview"]]]})
        assert page.status_code == 200, page.text
        assert page.json()["results"][0]["metrics"] == [60000]


def test_slow_reports_hold_up_neither_other_reports_nor_readiness(
        store: Store, engine_url: str, key: str) -> None:
    with running_app(store, engine_url) as client:
        report_store: Store = client.app.state.report_store  # type: ignore[attr-defined]

        def slow_report() -> threading.Thread:
            # Two seconds of ClickHouse time on one of the reports' connections.
            running = threading.Thread(target=report_store.rows, args=(
                "SELECT sum(sleepEachRow(0.1)) FROM numbers(20)",))
            running.start()
            time.sleep(0.2)  # let it take its connection
            return running

        slow = [slow_report()]
        other_report = ask(client, key, "query").status_code
        answered_first = slow[0].is_alive()
        slow += [slow_report() for _ in range(REPORT_CONNECTIONS - 1)]  # every one busy
        ready = client.get("/readyz").status_code
        probed_first = all(running.is_alive() for running in slow)
        for running in slow:
            running.join()
    assert (other_report, ready) == (200, 200)
    assert answered_first, "the report waited for the slow one"
    assert probed_first, "the readiness probe waited for the reports"

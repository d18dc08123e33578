"""The reports API over HTTP: auth, share tokens, CSV, realtime, errors as JSON."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.reports.auth import create_key, list_keys, revoke_key
from collector.reports.context import CONTEXT_SECONDS
from collector.reports.thresholds import set_thresholds
from collector.storage import Store
from tests.conftest import running_app
from tests.reporting_data import SITE, day, make_event, sample_site_events, store_events

TWO_DAYS = [day(0).isoformat(), day(1).isoformat()]
PAGES = {"site_id": SITE, "date_range": TWO_DAYS, "metrics": ["visitors", "pageviews"],
         "dimensions": ["event:page"]}


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    store_events(store, sample_site_events())
    with running_app(store, engine_url) as running:
        yield running


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


def set_k(client: TestClient, store: Store, k: int, public_k: int) -> None:
    """Store the site's thresholds, and have the app read them at once."""
    set_thresholds(store, SITE, k=k, public_k=public_k)
    client.app.state.reports.site_contexts.forget()  # type: ignore[attr-defined]


def post(client: TestClient, token: str | None, body: dict[str, Any],
         **headers: str) -> Any:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/api/v2/query", json=body, headers=headers)


def test_query_answers_in_stats_api_v2_shape(client: TestClient, key: str) -> None:
    response = post(client, key, PAGES)
    assert response.status_code == 200
    body = response.json()
    assert body["results"][0] == {"dimensions": ["/"], "metrics": [3, 4]}
    assert body["query"]["metrics"] == ["visitors", "pageviews"]
    filtered = {**PAGES, "filters": [["or", [["is", "visit:country", ["DE"]],
                                             ["not", ["contains", "event:page", ["x"]]]]]]}
    assert post(client, key, filtered).json()["query"]["filters"] == filtered["filters"]
    assert body["meta"]["source"] == "raw"  # few visits: exact visitors from the raw tables
    assert response.headers["cache-control"] == "no-store"


def test_no_key_is_401_and_another_sites_key_is_403(client: TestClient, store: Store) -> None:
    assert post(client, None, PAGES).status_code == 401
    assert post(client, "ck_nothing_here", PAGES).status_code == 401
    other = create_key(store, "other.example")
    response = post(client, other, PAGES)
    assert response.status_code == 403 and response.json()["field"] == "site_id"


def test_a_wrong_secret_for_a_real_key_is_401(client: TestClient, key: str) -> None:
    prefix, key_id, secret = key.split("_", 2)
    forged = f"{prefix}_{key_id}_{'A' * len(secret)}"
    assert post(client, forged, PAGES).status_code == 401


def test_revoked_keys_stop_working(client: TestClient, store: Store) -> None:
    token = create_key(store, SITE, label="temporary")
    assert post(client, token, PAGES).status_code == 200
    key_id = token.split("_")[1]
    assert revoke_key(store, key_id)
    assert post(client, token, PAGES).status_code == 401
    assert [info.revoked for info in list_keys(store, SITE) if info.key_id == key_id] == [True]


def test_only_the_hash_of_a_key_is_stored(store: Store, key: str) -> None:
    secret = key.split("_", 2)[2]
    stored = store.rows("SELECT * FROM api_keys")
    assert secret not in repr(stored)


def test_share_tokens_see_the_public_k_threshold(client: TestClient, store: Store,
                                                 key: str) -> None:
    share = create_key(store, SITE, kind="share")
    # Keys travel only in the Authorization header: a token in the URL opens nothing.
    assert client.post(f"/api/v2/query?auth={share}", json=PAGES).status_code == 401
    public = post(client, share, PAGES).json()["results"]
    # Every page has fewer than 5 visitors: a share link sees only the aggregate (its
    # numbers noised: tests/test_share_privacy.py).
    assert [row["dimensions"] for row in public] == [["(other)"]]
    set_k(client, store, k=3, public_k=2)
    owner = post(client, key, PAGES).json()["results"]
    assert [row["dimensions"][0] for row in owner] == ["(other)", "/"]
    public = post(client, share, PAGES).json()["results"]
    # Ordered by the noisy counts; (other) holds one visitor's page: under k, suppressed.
    assert sorted(row["dimensions"][0] for row in public) == ["(other)", "/", "/blog/a",
                                                               "/pricing"]
    assert [row["metrics"] for row in public if row["dimensions"] == ["(other)"]] == [
        [None, None]]
    set_k(client, store, k=1, public_k=5)


def test_invalid_query_is_400_with_the_field(client: TestClient, key: str) -> None:
    body = {**PAGES, "filters": [["and", [["is", "visit:nope", ["x"]]]]]}
    response = post(client, key, body)
    assert response.status_code == 400
    assert response.json()["field"] == "filters[0][1][0][1]"
    assert post(client, key, {**PAGES, "metrics": "visitors"}).json()["field"] == "metrics"
    broken = client.post("/api/v2/query", content=b"{not json",
                         headers={"Authorization": f"Bearer {key}"})
    assert broken.status_code == 400 and broken.json()["field"] == "body"


@pytest.mark.parametrize("how", ["accept", "format"])
def test_csv_on_request(client: TestClient, key: str, how: str) -> None:
    if how == "accept":
        response = post(client, key, PAGES, Accept="text/csv")
    else:
        response = client.post("/api/v2/query?format=csv", json=PAGES,
                               headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.text.splitlines() == ["event:page,visitors,pageviews", "/,3,4",
                                          "/blog/a,2,2", "/pricing,2,2", "/blog/b,1,1"]


def test_csv_neutralises_spreadsheet_formulas(client: TestClient, store: Store,
                                              key: str) -> None:
    # Every stored page starts with "/": a campaign tag is how a formula gets in.
    store_events(store, [make_event(int(time.time() * 1000) - 86_400_000 * 30, 77,
                                    "/?ref=%3DHYPERLINK(%22x%22)")])
    body = {**PAGES, "date_range": "all", "dimensions": ["visit:source"],
            "filters": [["contains", "visit:source", ["HYPER"]]]}
    response = post(client, key, body, Accept="text/csv")
    assert response.text.splitlines()[1].startswith('"\'=HYPERLINK')


def test_realtime_visitors_in_the_last_five_minutes(client: TestClient, store: Store,
                                                    key: str) -> None:
    now = int(time.time() * 1000)
    store_events(store, [make_event(now - 60_000, 901), make_event(now - 120_000, 902),
                         make_event(now - 10 * 60_000, 903)])
    response = client.get(f"/api/v1/stats/realtime/visitors?site_id={SITE}",
                          headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200 and response.json() == 2
    assert client.get(f"/api/v1/stats/realtime/visitors?site_id={SITE}").status_code == 401


def test_site_id_injection_is_just_a_forbidden_site(client: TestClient, key: str) -> None:
    response = post(client, key, {**PAGES, "site_id": "example.com' OR '1'='1"})
    assert response.status_code == 403


def test_site_settings_are_cached_but_changes_apply(store: Store, engine_url: str,
                                                    key: str) -> None:
    clock = [time.time()]
    with running_app(store, engine_url, clock=lambda: clock[0]) as own:
        owner = post(own, key, PAGES).json()["results"]
        assert len(owner) > 1
        # Written behind the cache's back, as another process sharing a server would.
        store.command("INSERT INTO report_settings (site, k, public_k, version) VALUES "
                      "({site:String}, 1000, 1000, {version:UInt64})",
                      {"site": SITE, "version": time.time_ns()})
        assert post(own, key, PAGES).json()["results"] == owner
        clock[0] += CONTEXT_SECONDS + 1
        assert [row["dimensions"] for row in post(own, key, PAGES).json()["results"]] \
            == [["(other)"]]
        set_k(own, store, k=1, public_k=5)  # and the app told: applies at once
        assert post(own, key, PAGES).json()["results"] == owner


def test_reports_do_not_wait_for_the_writers_connection(client: TestClient, store: Store,
                                                         key: str) -> None:
    answered, released, holding = threading.Event(), threading.Event(), threading.Event()

    def busy_writer() -> None:  # the writer's connection is busy (a long insert, say)
        with store._client():  # its one connection, taken
            holding.set()
            answered.wait(timeout=30)  # gives up eventually, so a regression fails, not hangs
            released.set()

    holder = threading.Thread(target=busy_writer)
    holder.start()
    holding.wait()
    response = post(client, key, PAGES)
    still_busy = not released.is_set()
    answered.set()
    holder.join()
    assert response.status_code == 200 and response.json()["results"]
    assert still_busy, "the report waited for the writer's connection"

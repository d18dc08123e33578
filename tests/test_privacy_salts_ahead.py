"""Salts at midnight: prepared ahead by the background duty, provisional through an outage.

The outage is real: the ``salts`` table is renamed away (or the whole database
dropped), so every read and insert of a salt fails in the engine itself. Each
test lives on UTC days of its own, so they share the module's database.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.errors import StorageError
from collector.privacy import SaltKeeper, visitor_hash
from collector.privacy.salts import PREPARE_AHEAD_MS
from collector.storage import Store, migrate, open_store
from tests.conftest import CHROME_UA, flush, fresh_database_name, running_app
from tests.test_privacy_salts import Clock

SITE = "midnight.test"


def midnight(month: int) -> float:
    """When a UTC day begins; a month of its own for each test."""
    return dt.datetime(2026, month, 1, tzinfo=dt.UTC).timestamp()


@pytest.fixture(autouse=True)
def salts_restored(store: Store) -> Iterator[None]:
    """The module's salts table is back after each test, even one that failed mid-outage."""
    yield
    if store.rows("EXISTS TABLE salts_away")[0][0]:
        bring_salts_back(store)


@pytest.fixture()
def own_store(engine_url: str) -> Store:
    """A store on a database of its own, which the test may drop entirely."""
    opened = open_store(engine_url, fresh_database_name("salts_down"))
    migrate(opened)
    return opened


def take_salts_away(store: Store) -> None:
    store.command("RENAME TABLE salts TO salts_away")


def bring_salts_back(store: Store) -> None:
    store.command("RENAME TABLE salts_away TO salts")


def stored_salt(store: Store, moment: float) -> bytes | None:
    rows = store.rows("SELECT salt FROM salts WHERE day = {day:Date} "
                      "ORDER BY created_ms, salt LIMIT 1",
                      {"day": dt.datetime.fromtimestamp(moment, dt.UTC).date()})
    return bytes.fromhex(rows[0][0]) if rows else None


def test_the_duty_writes_tomorrow_s_salt_in_the_last_hours_of_today(store: Store) -> None:
    start = midnight(3)
    clock = Clock(start - PREPARE_AHEAD_MS / 1000 - 60)
    keeper = SaltKeeper(store, clock)
    keeper.refresh()
    assert stored_salt(store, start) is None  # not yet: too early
    clock.now += 120
    keeper.refresh()
    prepared = stored_salt(store, start)
    assert prepared is not None
    assert stored_salt(store, start - 1) != prepared
    # Another collector at midnight converges on it rather than writing its own.
    clock.now = start + 1
    assert SaltKeeper(store, clock).salt_for(int(clock.now * 1000)) == prepared
    assert keeper.salt_for(int(clock.now * 1000)) == prepared


def test_midnight_needs_no_store_once_the_salt_is_prepared(store: Store) -> None:
    start = midnight(4)
    clock = Clock(start - 3600)
    keeper = SaltKeeper(store, clock)
    keeper.refresh()
    take_salts_away(store)
    clock.now = start + 5
    salt = keeper.salt_for(int(clock.now * 1000))
    yesterday = keeper.previous_salt(int(clock.now * 1000))
    bring_salts_back(store)
    assert salt == stored_salt(store, start)
    assert yesterday == stored_salt(store, start - 1)


def test_an_outage_at_midnight_hashes_with_a_provisional_salt_then_stores_it(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    start = midnight(5)
    clock = Clock(start - 3600)
    keeper = SaltKeeper(store, clock)
    take_salts_away(store)
    with pytest.raises(StorageError):  # the duty fails (logged), and is retried
        keeper.refresh()
    clock.now = start + 5
    now_ms = int(clock.now * 1000)
    with caplog.at_level(logging.WARNING, "collector.salts"):
        provisional = keeper.salt_for(now_ms)
    assert "provisional salt" in caplog.text
    assert keeper.salt_for(now_ms + 60_000) == provisional  # stable: no store call again
    assert len(provisional) == 32
    assert keeper.previous_salt(now_ms) is None  # unreadable now; the request never waits
    bring_salts_back(store)
    keeper.refresh()
    # No other collector wrote the day's salt: the provisional one becomes the shared one.
    assert stored_salt(store, start) == provisional
    assert keeper.salt_for(now_ms) == provisional
    assert SaltKeeper(store, clock).salt_for(now_ms) == provisional


def test_a_provisional_salt_yields_to_the_one_another_collector_wrote_first(
        store: Store, caplog: pytest.LogCaptureFixture) -> None:
    start = midnight(6)
    clock = Clock(start + 5)
    now_ms = int(clock.now * 1000)
    cut_off, connected = SaltKeeper(store, clock), SaltKeeper(store, clock)
    take_salts_away(store)
    provisional = cut_off.salt_for(now_ms)
    bring_salts_back(store)
    shared = connected.salt_for(now_ms)
    assert shared != provisional
    clock.now += 60
    with caplog.at_level(logging.WARNING, "collector.salts"):
        cut_off.refresh()
    assert "count twice" in caplog.text
    assert cut_off.salt_for(now_ms) == shared
    assert stored_salt(store, start) == shared


def test_the_duty_reads_yesterday_s_salt_that_an_outage_hid(store: Store) -> None:
    start = midnight(7)
    clock = Clock(start - 3600)
    SaltKeeper(store, clock).salt_for(int(clock.now * 1000))  # yesterday's, written
    clock.now = start + 5
    restarted = SaltKeeper(store, clock)  # a restart just after midnight
    take_salts_away(store)
    assert restarted.previous_salt(int(clock.now * 1000)) is None
    bring_salts_back(store)
    restarted.refresh()
    assert restarted.previous_salt(int(clock.now * 1000)) == stored_salt(store,
                                                                          start - 1)


def post(client: TestClient, page: str) -> int:
    body = {"n": "pageview", "u": f"https://{SITE}{page}", "d": SITE}
    return client.post("/api/event", content=json.dumps(body),
                       headers={"User-Agent": CHROME_UA}).status_code


def visitors_on(store: Store, page: str) -> list[int]:
    return [row[0] for row in store.rows(
        "SELECT visitor FROM events WHERE site = {s:String} AND pathname = {p:String}",
        {"s": SITE, "p": page})]


def test_ingest_keeps_accepting_when_the_salts_fail_at_midnight(store: Store,
                                                                engine_url: str,
                                                                tmp_path: Path) -> None:
    start = midnight(8)
    clock = Clock(start - 8 * 3600)  # too early for the duty to prepare tomorrow's
    with running_app(store, engine_url, clock=clock, data_dir=tmp_path) as client:
        take_salts_away(store)
        clock.now = start + 3600
        assert [post(client, "/first"), post(client, "/again")] == [202, 202]
        flush(client)
        bring_salts_back(store)
        client.app.state.salts.refresh()  # type: ignore[attr-defined]  # the duty's turn
        assert post(client, "/after") == 202
        flush(client)
    first, again, after = (visitors_on(store, page) for page in ("/first", "/again", "/after"))
    assert first == again == after  # one visitor, one hash, before and after the outage
    salt = stored_salt(store, start)
    assert salt is not None
    assert first[0] == visitor_hash(salt, SITE, "203.0.113.9", CHROME_UA)


def test_ingest_never_answers_500_while_the_whole_store_is_down(own_store: Store,
                                                                engine_url: str,
                                                                tmp_path: Path) -> None:
    start = midnight(9)
    clock = Clock(start - 8 * 3600)
    with running_app(own_store, engine_url, clock=clock, data_dir=tmp_path,
                     buffer_max_rows=40) as client:
        own_store.command(f"DROP DATABASE {own_store.database}")
        clock.now = start + 60
        answers = [client.post("/api/event", headers={"User-Agent": CHROME_UA},
                               content=json.dumps({"n": "pageview", "d": SITE,
                                                   "u": f"https://{SITE}/down/{index}"}))
                   for index in range(60)]
        pixel = client.get(f"/pixel.gif?d={SITE}&u=/pixel", headers={"User-Agent": CHROME_UA})
        assert pixel.status_code == 200 and pixel.headers["content-type"] == "image/gif"
        refused = client.post("/api/event", content=b"{}", headers={"User-Agent": CHROME_UA})
        assert refused.status_code == 400
        own_store.command(f"CREATE DATABASE {own_store.database}")
        migrate(own_store)
        client.app.state.salts.refresh()  # type: ignore[attr-defined]
    statuses = [answer.status_code for answer in answers]
    assert set(statuses) <= {202, 503} and statuses[0] == 202
    assert all(answer.headers["retry-after"] for answer in answers if answer.status_code == 503)
    accepted = statuses.count(202)
    stored = own_store.rows("SELECT count() FROM events WHERE site = {s:String} "
                            "AND startsWith(pathname, '/down/')", {"s": SITE})[0][0]
    assert stored == accepted  # every 202 kept its promise once the store came back

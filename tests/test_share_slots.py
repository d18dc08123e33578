"""A share link runs at most SHARE_REPORTS_AT_ONCE reports at a time (collector.reports.
share_slots): one more is a 429, other links and key holders are not held up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack

import pytest
from starlette.testclient import TestClient

from collector.errors import TooManyRequests
from collector.reports.auth import SHARE, create_key, key_id_of
from collector.reports.share_slots import SHARE_REPORTS_AT_ONCE, ShareSlots
from collector.storage import Store
from tests.conftest import running_app

SITE = "slots.test"
QUERY = {"site_id": SITE, "date_range": "day", "metrics": ["visitors"]}


def test_a_link_gets_its_slots_and_no_more_until_one_is_free() -> None:
    slots = ShareSlots(at_once=2)
    with ExitStack() as held:
        for _ in range(2):
            held.enter_context(slots.slot("link-a"))
        with pytest.raises(TooManyRequests) as refused:
            held.enter_context(slots.slot("link-a"))
        assert refused.value.retry_after == 1
        with slots.slot("link-b"):  # another link has slots of its own
            pass
    with slots.slot("link-a"):  # freed when the reports answered, even by an error
        pass
    with pytest.raises(RuntimeError), slots.slot("link-a"):
        raise RuntimeError("a failing report")
    with ExitStack() as held:
        for _ in range(2):
            held.enter_context(slots.slot("link-a"))


def test_slots_are_counted_across_threads() -> None:
    slots = ShareSlots(at_once=3)
    inside, release = threading.Barrier(4), threading.Event()
    refused: list[TooManyRequests] = []

    def report() -> None:
        try:
            with slots.slot("link"):
                inside.wait(timeout=10)
                release.wait(timeout=10)
        except TooManyRequests as error:
            refused.append(error)

    threads = [threading.Thread(target=report) for _ in range(3)]
    for thread in threads:
        thread.start()
    inside.wait(timeout=10)  # three reports hold the three slots
    report()  # a fourth is refused at once
    release.set()
    for thread in threads:
        thread.join()
    assert len(refused) == 1


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    with running_app(store, engine_url) as running:
        yield running


def test_a_link_with_every_slot_busy_gets_429_while_the_owner_is_answered(
        client: TestClient, store: Store) -> None:
    share, other, key = (create_key(store, SITE, SHARE), create_key(store, SITE, SHARE),
                         create_key(store, SITE))
    slots: ShareSlots = client.app.state.reports.share_slots  # type: ignore[attr-defined]

    def ask(token: str) -> int:
        return client.post("/api/v2/query", json=QUERY,
                           headers={"Authorization": f"Bearer {token}"}).status_code

    with ExitStack() as running:  # the link's reports, still running
        for _ in range(SHARE_REPORTS_AT_ONCE):
            running.enter_context(slots.slot(key_id_of(share)))
        answer = client.post("/api/v2/query", json=QUERY,
                             headers={"Authorization": f"Bearer {share}"})
        assert (answer.status_code, answer.headers["retry-after"]) == (429, "1")
        assert "already runs" in answer.json()["error"]
        assert (ask(other), ask(key)) == (200, 200)
    assert ask(share) == 200

"""A share link runs at most SHARE_REPORTS_AT_ONCE reports at a time (collector.reports.
share_slots): its other requests wait their turn, a flood beyond the line gets 429, and
other links and key holders are not held up."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from collector.errors import TooManyRequests
from collector.reports.auth import API_KEY, SHARE, Grant, create_key
from collector.reports.share_slots import ShareSlots
from collector.storage import Store
from tests.conftest import running_app

SITE = "slots.test"
QUERY = {"site_id": SITE, "date_range": "day", "metrics": ["visitors"]}


def test_a_link_runs_two_at_once_the_rest_wait_and_a_flood_is_refused() -> None:
    async def scenario() -> tuple[int, list[str], bool]:
        slots = ShareSlots(at_once=2, waiting=3)
        running, most, order = 0, 0, []
        release = asyncio.Event()

        async def report(name: str) -> None:
            nonlocal running, most
            async with slots.slot("link"):
                running += 1
                most = max(most, running)
                order.append(name)
                await release.wait()
                running -= 1

        tasks = [asyncio.create_task(report(f"r{n}")) for n in range(5)]  # 2 run, 3 wait
        await asyncio.sleep(0.05)
        with pytest.raises(TooManyRequests) as refused:  # a sixth: the line is full
            async with slots.slot("link"):
                pass
        assert refused.value.retry_after == 1
        async with slots.slot("other-link"):  # another link has a line of its own
            pass
        release.set()
        await asyncio.gather(*tasks)
        async with slots.slot("link"):  # all answered: the line is free again
            pass
        return most, order, not slots._links

    most, order, emptied = asyncio.run(scenario())
    assert most == 2 and sorted(order) == [f"r{n}" for n in range(5)] and emptied


def test_owners_go_straight_on() -> None:
    async def scenario() -> None:
        slots = ShareSlots(at_once=1, waiting=0)
        async with slots.for_caller(Grant("k1", SITE, SHARE)):
            with pytest.raises(TooManyRequests):
                async with slots.for_caller(Grant("k1", SITE, SHARE)):
                    pass
            async with slots.for_caller(Grant("k2", SITE, API_KEY)), \
                    slots.for_caller(API_KEY):
                pass

    asyncio.run(scenario())


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    with running_app(store, engine_url) as running:
        yield running


def test_many_requests_of_one_link_at_once_are_all_answered(client: TestClient,
                                                            store: Store) -> None:
    # A shared dashboard asks for its panels at once: they wait their turn, none is refused.
    share = create_key(store, SITE, SHARE)

    async def ask_all() -> list[int]:
        import httpx

        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://slots") as http:
            answers = await asyncio.gather(*(
                http.post("/api/v2/query", json=QUERY,
                          headers={"Authorization": f"Bearer {share}"}) for _ in range(12)))
        return [answer.status_code for answer in answers]

    assert asyncio.run(ask_all()) == [200] * 12

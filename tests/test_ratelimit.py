"""Abuse limits: token buckets per client and per site (429 + Retry-After), failed key checks."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.ratelimit import RateLimits, TokenBuckets, client_key, retry_after
from collector.reports.auth import create_key
from collector.storage import Store
from collector.views.events import TRANSPARENT_GIF
from tests.conftest import CHROME_UA, app_settings

HEADERS = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(site: str = "limits.test") -> dict[str, str]:
    return {"n": "pageview", "u": f"https://{site}/", "d": site}


@contextmanager
def limited_app(store: Store, engine_url: str, data_dir: Path, clock: Clock,
                client: tuple[str, int] = ("203.0.113.9", 50000),
                **overrides: Any) -> Iterator[TestClient]:
    settings = app_settings(engine_url, data_dir=data_dir, **overrides)
    app = create_app(settings, store)
    app.state.rate_limits = RateLimits(settings, clock)
    with TestClient(app, client=client) as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "collector-data"


def test_a_bucket_passes_its_burst_then_refuses_until_it_refills(clock: Clock) -> None:
    buckets = TokenBuckets(rate=2.0, burst=4.0, max_keys=100, clock=clock)
    assert [buckets.take("a") for _ in range(4)] == [0.0] * 4
    assert buckets.take("a") == pytest.approx(0.5)  # one token every half second
    assert buckets.take("b") == 0.0  # other keys have their own bucket
    clock.now += 0.5
    assert buckets.wait("a") == 0.0
    assert buckets.take("a") == 0.0
    assert buckets.take("a") > 0
    assert buckets.refused == 2
    clock.now += 3600
    assert [buckets.take("a") for _ in range(5)].count(0.0) == 4  # refilled to the burst only


def test_buckets_are_bounded_and_forget_the_least_recent(clock: Clock) -> None:
    buckets = TokenBuckets(rate=1.0, burst=1.0, max_keys=100, clock=clock)
    buckets.take("busy")
    assert buckets.take("busy") > 0
    for index in range(10_000):
        buckets.take(index)
        assert len(buckets) <= 100
        if index % 10 == 0:
            assert buckets.take("busy") > 0  # used often: remembered, still empty
    for index in range(10_000, 10_200):
        buckets.take(index)
    assert buckets.take("busy") == 0.0  # unused for 200 new keys: forgotten, so full again


def test_clients_are_found_by_a_keyed_hash_ipv6_by_its_64() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9")
    assert client_key("2001:db8:1:2::1") != client_key("2001:db8:1:3::1")
    assert client_key("203.0.113.9") != client_key("203.0.113.10")
    key = client_key("203.0.113.9")
    assert isinstance(key, int) and "203" not in str(key)


def test_retry_after_is_whole_seconds_and_at_least_one() -> None:
    assert [retry_after(wait) for wait in (0.01, 1.0, 1.2, 30)] == [1, 1, 2, 30]


def test_a_client_over_its_limit_gets_429_json_and_the_pixel_a_gif(
        store: Store, engine_url: str, data_dir: Path, clock: Clock) -> None:
    with limited_app(store, engine_url, data_dir, clock, rate_limit_client=5.0) as client:
        answers = [client.post("/api/event", json=event(), headers=HEADERS) for _ in range(10)]
        assert [answer.status_code for answer in answers] == [202] * 10  # a burst of 2 s
        refused = client.post("/api/event", json=event(), headers=HEADERS)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.headers["access-control-allow-origin"] == "*"
        assert "too many requests" in refused.json()["error"]
        pixel = client.get("/pixel.gif?d=limits.test&u=/", headers=HEADERS)
        assert (pixel.status_code, pixel.headers["content-type"]) == (429, "image/gif")
        assert pixel.content == TRANSPARENT_GIF
        assert pixel.headers["retry-after"] == "1"
        clock.now += 0.2  # one token
        assert client.post("/api/event", json=event(), headers=HEADERS).status_code == 202
        assert client.post("/api/event", json=event(), headers=HEADERS).status_code == 429
        limits = client.app.state.rate_limits  # type: ignore[attr-defined]
        assert limits.refused()["client"] == 3


def test_clients_behind_a_trusted_proxy_each_have_their_bucket(
        store: Store, engine_url: str, data_dir: Path, clock: Clock) -> None:
    import ipaddress

    proxy = (ipaddress.ip_network("203.0.113.0/24"),)
    with limited_app(store, engine_url, data_dir, clock, rate_limit_client=1.0,
                     trusted_proxies=proxy) as client:
        def send(address: str) -> int:
            return client.post("/api/event", json=event(), headers={
                **HEADERS, "X-Forwarded-For": address}).status_code

        assert [send("198.51.100.1") for _ in range(3)] == [202, 202, 429]
        assert [send("198.51.100.2") for _ in range(2)] == [202, 202]
        assert send("2001:db8:1:2::1") == 202
        assert send("2001:db8:1:2::2") == 202
        assert send("2001:db8:1:2::3") == 429  # the same /64


def test_only_events_to_record_take_a_token(store: Store, engine_url: str, data_dir: Path,
                                            clock: Clock) -> None:
    with limited_app(store, engine_url, data_dir, clock, rate_limit_client=1.0) as client:
        bot = {**HEADERS, "User-Agent": "curl/8.0"}
        for _ in range(5):  # dropped, so never stored: no token taken
            answer = client.post("/api/event", json=event(), headers=bot)
            assert answer.headers["x-collector-dropped"] == "bot"
        statuses = [client.post("/api/event", json=event(), headers=HEADERS).status_code
                    for _ in range(3)]
        assert statuses == [202, 202, 429]


def test_this_host_is_never_limited(store: Store, engine_url: str, data_dir: Path,
                                    clock: Clock) -> None:
    with limited_app(store, engine_url, data_dir, clock, client=("127.0.0.1", 50000),
                     rate_limit_client=1.0) as client:
        statuses = {client.post("/api/event", json=event(), headers=HEADERS).status_code
                    for _ in range(20)}
        assert statuses == {202}


def test_a_site_over_its_limit_gets_429_and_other_sites_do_not(
        store: Store, engine_url: str, data_dir: Path, clock: Clock) -> None:
    with limited_app(store, engine_url, data_dir, clock, rate_limit_site=2.0) as client:
        statuses = [client.post("/api/event", json=event("busy.test"), headers=HEADERS)
                    .status_code for _ in range(5)]
        assert statuses == [202, 202, 202, 202, 429]
        assert client.post("/api/event", json=event("quiet.test"),
                           headers=HEADERS).status_code == 202
        both = {"n": "pageview", "u": "https://quiet.test/", "d": "quiet.test,busy.test"}
        assert client.post("/api/event", json=both, headers=HEADERS).status_code == 429
        limits = client.app.state.rate_limits  # type: ignore[attr-defined]
        assert limits.refused()["site"] == 2


def test_failed_key_checks_are_limited_per_client(store: Store, engine_url: str,
                                                  data_dir: Path, clock: Clock) -> None:
    key = create_key(store, "limits.test")
    query = {"site_id": "limits.test", "date_range": "7d", "metrics": ["visitors"]}

    def ask(client: TestClient, token: str, address: str = "198.51.100.1") -> Any:
        return client.post("/api/v2/query", json=query, headers={
            "Authorization": f"Bearer {token}", "X-Forwarded-For": address})

    import ipaddress

    proxy = (ipaddress.ip_network("203.0.113.0/24"),)
    with limited_app(store, engine_url, data_dir, clock, trusted_proxies=proxy) as client:
        assert {ask(client, "ck_wrong_guess").status_code for _ in range(20)} == {401}
        blocked = ask(client, key)  # even a good key waits: the check is not even made
        assert blocked.status_code == 429
        assert blocked.headers["retry-after"] == "6"
        assert blocked.json()["error"] == "too many failed API-key checks from this client"
        assert ask(client, key, "198.51.100.2").status_code == 200
        realtime = client.get("/api/v1/stats/realtime/visitors?site_id=limits.test",
                              headers={"Authorization": f"Bearer {key}",
                                       "X-Forwarded-For": "198.51.100.1"})
        assert realtime.status_code == 429
        clock.now += 6
        assert ask(client, key).status_code == 200  # successes take nothing
        assert ask(client, "ck_wrong_guess").status_code == 401
        assert ask(client, key).status_code == 429

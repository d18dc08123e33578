"""What ingest filtered out: counted per configured site, UTC hour and reason, read back
through ``POST /api/v2/drops``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from collector.drops import DROPS_COLUMNS, DROPS_TABLE, REASONS, DropCounter
from collector.reports.auth import create_key
from collector.reports.thresholds import set_thresholds
from collector.sites import SiteRegistry, add_site, set_exclusions
from collector.storage import Store
from collector.writer import Writer
from tests.conftest import CHROME_UA, flush, running_app
from tests.removal_support import files_holding, own_store, token
from tests.reporting_data import at, day

SITE = "drops.test"  # Asia/Tokyo: +09:00 all year
OFFICE = "office.test"  # excludes the test client's address range
INDIA = "india.test"  # Asia/Kolkata: +05:30
LISTED = "listed.test"  # configured through COLLECTOR_SITES only
STRANGER = "stranger.test"  # configured nowhere
SPAM_HOST = "spam-referrer.example"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSER = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}
ZERO = dict.fromkeys(REASONS, 0)


def store_drops(store: Store, drops: Iterable[tuple[str, int, str]]) -> None:
    """Count drops ``(site, timestamp_ms, reason)`` as ingest does, and write them through a
    writer: the rows the retention and erasure tests need, made by the real counter."""
    drops = list(drops)
    moment = [0.0]
    writer = Writer(store, {DROPS_TABLE: DROPS_COLUMNS})
    counter = DropCounter(SiteRegistry(store, tuple({site for site, _, _ in drops})), writer,
                          clock=lambda: moment[0])
    for site, timestamp_ms, reason in drops:
        moment[0] = timestamp_ms / 1000
        counter.count([site], reason)
    assert counter.flush()
    writer.flush()


class Clock:
    def __init__(self, timestamp_ms: int) -> None:
        self.now = timestamp_ms / 1000

    def __call__(self) -> float:
        return self.now

    def at(self, timestamp_ms: int) -> None:
        self.now = timestamp_ms / 1000


@pytest.fixture(scope="module")
def sites(store: Store) -> Store:
    add_site(store, SITE, timezone="Asia/Tokyo")
    add_site(store, OFFICE)
    set_exclusions(store, OFFICE, ("203.0.113.0/24",), ())
    add_site(store, INDIA, timezone="Asia/Kolkata")
    return store


@pytest.fixture(scope="module")
def key(sites: Store) -> str:
    return create_key(sites, SITE)


@contextmanager
def collector(store: Store, engine_url: str, clock: Clock,
              **overrides: object) -> Iterator[TestClient]:
    with running_app(store, engine_url, clock=clock, sites=(LISTED,), **overrides) as client:
        yield client


def send(client: TestClient, domain: str, path: str = "/", referrer: str | None = None,
         **headers: str) -> str | None:
    """Post a pageview; the reason it was dropped, or None when it was recorded."""
    body = {"n": "pageview", "u": f"https://{domain.split(',')[0]}{path}", "d": domain,
            "r": referrer}
    response = client.post("/api/event", content=json.dumps(body),
                           headers={**BROWSER, **headers})
    assert response.status_code == 202
    return response.headers.get("x-collector-dropped")


def settle(client: TestClient) -> None:
    """Hand the counts to the writer and write them now, as the background does each second."""
    assert client.app.state.drops.flush()  # type: ignore[attr-defined]
    flush(client)


def read(client: TestClient, token: str | None, body: Any, path: str = "/api/v2/drops",
         **headers: str) -> Any:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, str) else json.dumps(body)
    return client.post(path, content=raw, headers=headers)


def counts(response: Any) -> dict[str, int | None]:
    assert response.status_code == 200, response.text
    return {row["reason"]: row["count"] for row in response.json()["results"]}


def stored(store: Store, site: str) -> list[tuple[Any, ...]]:
    return store.rows("SELECT hour, reason, sum(count) FROM drops WHERE site = {s:String} "
                      "GROUP BY hour, reason ORDER BY hour, reason", {"s": site})


def test_every_reason_is_counted_per_configured_site(sites: Store, engine_url: str,
                                                     key: str, tmp_path: Path) -> None:
    spam_list = tmp_path / "referrer-spam.txt"
    spam_list.write_text(f"{SPAM_HOST}\n")
    clock = Clock(at("03:20"))  # 12:20 in Tokyo, on the same day
    with collector(sites, engine_url, clock, spam_list=spam_list) as client:
        sent = [
            send(client, SITE, **{"User-Agent": GOOGLEBOT}),
            send(client, SITE, **{"User-Agent": "curl/8.5.0"}),
            send(client, SITE, **{"User-Agent": ""}),
            send(client, SITE, DNT="1"),
            send(client, SITE, **{"Sec-GPC": "1"}),
            send(client, SITE, **{"Sec-Purpose": "prefetch"}),
            send(client, SITE, referrer=f"https://{SPAM_HOST}/offer"),
            send(client, OFFICE),
            send(client, OFFICE, DNT="1"),
            send(client, LISTED, **{"User-Agent": GOOGLEBOT}),
            # A stranger's domain is never counted, whatever the reason.
            send(client, STRANGER),
            send(client, STRANGER, **{"User-Agent": GOOGLEBOT}),
            # Several sites in one request: each configured one counts it.
            send(client, f"{SITE},{STRANGER},{LISTED}", DNT="1"),
            send(client, SITE),  # recorded, not dropped
        ]
        pixel = client.get(f"/pixel.gif?d={SITE}&u=/", headers={"User-Agent": GOOGLEBOT})
        settle(client)
        assert sent == ["bot", "bot", "bot", "opt-out", "opt-out", "prefetch", "spam",
                        "excluded", "opt-out", "bot", "unknown-site", "bot", "opt-out", None]
        assert pixel.headers["x-collector-dropped"] == "bot"
        response = read(client, key, {"site_id": SITE, "date_range": "day"})
        assert response.json()["results"] == [
            {"reason": "bot", "count": 4}, {"reason": "spam", "count": 1},
            {"reason": "opt-out", "count": 3}, {"reason": "excluded", "count": 0},
            {"reason": "prefetch", "count": 1}]
        # The last 24 hours and all days so far hold the same drops, all from this hour.
        for period in ("24h", "all"):
            assert read(client, key, {"site_id": SITE, "date_range": period}).json()[
                "results"] == response.json()["results"], period
        office = counts(read(client, create_key(sites, OFFICE),
                             {"site_id": OFFICE, "date_range": [day(0).isoformat()] * 2}))
        assert office == {**ZERO, "excluded": 1, "opt-out": 1}
    hour = datetime.combine(day(0), datetime.min.time()) + timedelta(hours=3)
    assert stored(sites, LISTED) == [(hour, "bot", 1), (hour, "opt-out", 1)]
    assert stored(sites, STRANGER) == []
    assert sites.rows("SELECT count() FROM drops WHERE reason = 'unknown-site'") == [(0,)]


def test_nothing_but_site_hour_reason_and_count_is_stored(
        sites: Store, engine_url: str, engine_dir: Path) -> None:
    columns = sites.rows("SELECT name FROM system.columns WHERE database = currentDatabase() "
                         "AND table = 'drops' ORDER BY position")
    assert [row[0] for row in columns] == list(DROPS_COLUMNS)
    secret = token()
    with collector(sites, engine_url, Clock(at("05:10", 1))) as client:
        assert send(client, SITE, f"/{secret}", f"https://{secret}.example/",
                    **{"User-Agent": f"{secret}bot/1.0"}) == "bot"
        settle(client)
    assert stored(sites, SITE)[-1] == (datetime.combine(day(1), datetime.min.time())
                                       + timedelta(hours=5), "bot", 1)
    assert files_holding(engine_dir, secret) == []


def test_buckets_are_the_sites_local_hours_and_days(sites: Store, engine_url: str,
                                                    key: str) -> None:
    clock = Clock(at("14:30", 2))  # 23:30 in Tokyo
    with collector(sites, engine_url, clock) as client:
        send(client, SITE, DNT="1")
        send(client, SITE, **{"User-Agent": GOOGLEBOT})
        clock.at(at("15:10", 2))  # 00:10 the next day in Tokyo
        send(client, SITE, **{"User-Agent": GOOGLEBOT})
        clock.at(at("16:59", 2))
        send(client, SITE, **{"User-Agent": GOOGLEBOT})
        settle(client)
        both_days = [day(2).isoformat(), day(3).isoformat()]
        daily = read(client, key, {"site_id": SITE, "date_range": both_days,
                                   "dimensions": ["time:day"]}).json()
        assert [row for row in daily["results"] if row["count"]] == [
            {"time": day(2).isoformat(), "reason": "bot", "count": 1},
            {"time": day(2).isoformat(), "reason": "opt-out", "count": 1},
            {"time": day(3).isoformat(), "reason": "bot", "count": 2}]
        # Every bucket and every reason is answered, in order.
        assert [(row["time"], row["reason"]) for row in daily["results"]] == [
            (label, reason) for label in both_days for reason in REASONS]
        assert daily["meta"]["timezone"] == "Asia/Tokyo"
        assert daily["meta"]["utc_hours"] == [f"{day(1).isoformat()}T15:00:00+00:00",
                                              f"{day(3).isoformat()}T15:00:00+00:00"]
        hourly = read(client, key, {"site_id": SITE, "date_range": [day(3).isoformat()] * 2,
                                    "dimensions": ["time:hour"]}).json()["results"]
        assert len(hourly) == 24 * len(REASONS)
        assert [(row["time"], row["count"]) for row in hourly if row["count"]] == [
            (f"{day(3).isoformat()} 00:00:00", 1), (f"{day(3).isoformat()} 01:00:00", 1)]
        weekly = read(client, key, {"site_id": SITE, "date_range": both_days,
                                    "dimensions": ["time:week"]}).json()["results"]
        assert sum(row["count"] for row in weekly if row["reason"] == "bot") == 3


def test_half_hour_offsets_count_each_utc_hour_where_it_begins(sites: Store,
                                                               engine_url: str) -> None:
    clock = Clock(at("18:10", 4))  # 23:40 in Kolkata
    with collector(sites, engine_url, clock) as client:
        send(client, INDIA, **{"User-Agent": GOOGLEBOT})
        clock.at(at("18:40", 4))  # 00:10 the next day, in the UTC hour that began at 23:30
        send(client, INDIA, **{"User-Agent": GOOGLEBOT})
        clock.at(at("19:05", 4))  # 00:35, in the UTC hour that began at 00:30
        send(client, INDIA, **{"User-Agent": GOOGLEBOT})
        clock.at(at("20:05", 4))  # 01:35, in the UTC hour that began at 01:30
        send(client, INDIA, **{"User-Agent": GOOGLEBOT})
        clock.at(at("17:20", 4))  # 22:50
        send(client, INDIA, DNT="1")
        settle(client)
        india = create_key(sites, INDIA)
        next_day = {"site_id": INDIA, "date_range": [day(5).isoformat()] * 2}
        assert counts(read(client, india, next_day)) == {**ZERO, "bot": 2}
        hourly = read(client, india, {**next_day, "dimensions": ["time:hour"]}).json()
        assert [(row["time"], row["count"]) for row in hourly["results"] if row["count"]] \
            == [(f"{day(5).isoformat()} 00:00:00", 1), (f"{day(5).isoformat()} 01:00:00", 1)]
        assert hourly["results"][0]["time"] == f"{day(5).isoformat()} 00:00:00"
        assert len(hourly["results"]) == 24 * len(REASONS)
        assert hourly["meta"]["utc_hours"] == [f"{day(4).isoformat()}T19:00:00+00:00",
                                               f"{day(5).isoformat()}T19:00:00+00:00"]
        previous_day = {"site_id": INDIA, "date_range": [day(4).isoformat()] * 2}
        assert counts(read(client, india, previous_day)) == {**ZERO, "bot": 2, "opt-out": 1}
        # No hour is counted in two adjacent days.
        both = {"site_id": INDIA, "date_range": [day(4).isoformat(), day(5).isoformat()]}
        assert counts(read(client, india, both)) == {**ZERO, "bot": 4, "opt-out": 1}


def test_dev_mode_counts_nothing(engine_url: str) -> None:
    store = own_store(engine_url, "drops_dev_mode")
    with running_app(store, engine_url, clock=Clock(at("10:00"))) as client:
        assert client.app.state.sites.open_to_all  # type: ignore[attr-defined]
        assert send(client, "anything.test", **{"User-Agent": GOOGLEBOT}) == "bot"
        assert send(client, "anything.test", DNT="1") == "opt-out"
        assert client.app.state.drops.pending == {}  # type: ignore[attr-defined]
        settle(client)
    assert store.rows("SELECT count() FROM drops") == [(0,)]


def test_share_links_see_counts_below_public_k_as_null(sites: Store, engine_url: str,
                                                       key: str) -> None:
    set_thresholds(sites, SITE, k=1, public_k=3)
    share = create_key(sites, SITE, kind="share")
    with collector(sites, engine_url, Clock(at("09:00", 6))) as client:
        for _ in range(3):
            send(client, SITE, **{"User-Agent": GOOGLEBOT})
        send(client, SITE, DNT="1")
        settle(client)
        body = {"site_id": SITE, "date_range": [day(6).isoformat()] * 2}
        public = read(client, share, body).json()
        # The bots' count is shown, with noise (tests/test_share_privacy.py); the rest not.
        assert {reason for reason, count in counts_of(public).items() if count is None} == {
            "spam", "opt-out", "excluded", "prefetch"}
        assert "below 3" in public["meta"]["suppressed"]
        exact = read(client, key, body).json()
        assert counts_of(exact) == {**ZERO, "bot": 3, "opt-out": 1}
        assert "suppressed" not in exact["meta"]
        shared_csv = read(client, share, body, Accept="text/csv")
        assert shared_csv.text.splitlines() == [
            "reason,count", f"bot,{counts_of(public)['bot']}", "spam,", "opt-out,",
            "excluded,", "prefetch,"]
    set_thresholds(sites, SITE, k=1, public_k=5)


def counts_of(body: dict[str, Any]) -> dict[str, int | None]:
    return {row["reason"]: row["count"] for row in body["results"]}


def test_csv_answers(sites: Store, engine_url: str, key: str) -> None:
    with collector(sites, engine_url, Clock(at("02:00", 7))) as client:  # 11:00 in Tokyo
        send(client, SITE, **{"Sec-Purpose": "prefetch"})
        settle(client)
        body = {"site_id": SITE, "date_range": [day(7).isoformat()] * 2}
        plain = read(client, key, body, path="/api/v2/drops?format=csv")
        assert plain.headers["content-type"].startswith("text/csv")
        assert plain.headers["cache-control"] == "no-store"
        assert plain.text.splitlines() == ["reason,count", "bot,0", "spam,0", "opt-out,0",
                                           "excluded,0", "prefetch,1"]
        hourly = read(client, key, {**body, "dimensions": ["time:hour"]}, Accept="text/csv")
        lines = hourly.text.splitlines()
        assert lines[0] == "time,reason,count" and len(lines) == 1 + 24 * len(REASONS)
        assert f"{day(7).isoformat()} 11:00:00,prefetch,1" in lines


@pytest.mark.parametrize(("body", "field"), [
    ("{", "body"),
    ([], "body"),
    ({"date_range": "day"}, "site_id"),
    ({"site_id": SITE}, "date_range"),
    ({"site_id": SITE, "date_range": "fortnight"}, "date_range"),
    ({"site_id": SITE, "date_range": ["2026-02-30", "2026-03-01"]}, "date_range[0]"),
    ({"site_id": SITE, "date_range": ["2026-03-02", "2026-03-01"]}, "date_range"),
    ({"site_id": SITE, "date_range": "day", "dimensions": "time:day"}, "dimensions"),
    ({"site_id": SITE, "date_range": "day", "dimensions": ["visit:source"]}, "dimensions[0]"),
    ({"site_id": SITE, "date_range": "day", "dimensions": ["time:day", "time:hour"]},
     "dimensions"),
    ({"site_id": SITE, "date_range": ["2024-01-01", "2026-01-01"],
      "dimensions": ["time:hour"]}, "dimensions[0]"),
    ({"site_id": SITE, "date_range": "day", "metrics": ["visitors"]}, "metrics"),
])
def test_bad_input_is_a_400_naming_the_field(sites: Store, engine_url: str, key: str,
                                             body: Any, field: str) -> None:
    with collector(sites, engine_url, Clock(at("10:00"))) as client:
        response = read(client, key, body)
    assert response.status_code == 400
    assert response.json()["field"] == field


def test_without_a_valid_key_for_the_site_is_401_or_403(sites: Store, engine_url: str) -> None:
    body = {"site_id": SITE, "date_range": "day"}
    with collector(sites, engine_url, Clock(at("10:00"))) as client:
        assert read(client, None, body).status_code == 401
        assert read(client, "ck_nothing_here", body).status_code == 401
        other = read(client, create_key(sites, OFFICE), body)
        assert other.status_code == 403 and other.json()["field"] == "site_id"


def test_a_full_write_buffer_never_turns_a_drop_into_a_503(sites: Store,
                                                           engine_url: str) -> None:
    # Two rows fill the buffer (a pageview and its visit), and nothing flushes on its own.
    with collector(sites, engine_url, Clock(at("08:00", 8)), buffer_max_rows=2,
                   flush_interval=3600) as client:
        assert send(client, LISTED) is None
        refused = client.post("/api/event", headers=BROWSER, content=json.dumps(
            {"n": "pageview", "u": f"https://{LISTED}/", "d": LISTED}))
        assert refused.status_code == 503
        assert send(client, LISTED, **{"User-Agent": GOOGLEBOT}) == "bot"
        drops = client.app.state.drops  # type: ignore[attr-defined]
        assert drops.flush() is False  # the writer is full: the count waits here
        hour = int(at("08:00", 8) / 1000)
        assert drops.pending == {(LISTED, hour, "bot"): 1}
        flush(client)
        settle(client)
        assert drops.pending == {}
    assert stored(sites, LISTED)[-1] == (datetime.fromtimestamp(hour, UTC).replace(tzinfo=None),
                                         "bot", 1)


def test_counts_are_written_at_shutdown(sites: Store, engine_url: str) -> None:
    # No background flush within the test: only the shutdown's can write the counts.
    with collector(sites, engine_url, Clock(at("08:00", 9)), flush_interval=3600) as client:
        for _ in range(2):
            send(client, LISTED, DNT="1")
    hour = datetime.combine(day(9), datetime.min.time()) + timedelta(hours=8)
    assert stored(sites, LISTED)[-1] == (hour, "opt-out", 2)

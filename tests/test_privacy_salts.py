"""Daily salts and the visitor hash: stable within a day, unlinkable across days, destroyed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from collector.privacy import SaltKeeper, visitor_hash
from collector.privacy.salts import DAY_MS
from collector.storage import Store
from tests.removal_support import files_holding

NOON = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_same_visitor_same_day_same_hash_next_day_different(store: Store) -> None:
    clock = Clock(NOON)
    keeper = SaltKeeper(store, clock)
    now_ms = int(clock.now * 1000)
    first = visitor_hash(keeper.salt_for(now_ms), "s.test", "198.51.100.1", "UA")
    later = visitor_hash(keeper.salt_for(now_ms + 3_600_000), "s.test", "198.51.100.1", "UA")
    assert first == later
    clock.now += 86400
    next_day = visitor_hash(keeper.salt_for(now_ms + DAY_MS), "s.test", "198.51.100.1", "UA")
    assert next_day != first
    assert 0 <= first < 2**64


def test_hash_depends_on_site_ip_and_user_agent() -> None:
    salt = b"k" * 32
    base = visitor_hash(salt, "a.test", "198.51.100.1", "UA")
    assert base != visitor_hash(salt, "b.test", "198.51.100.1", "UA")
    assert base != visitor_hash(salt, "a.test", "198.51.100.2", "UA")
    assert base != visitor_hash(salt, "a.test", "198.51.100.1", "UA2")


def test_collectors_sharing_a_store_converge_on_one_salt(store: Store) -> None:
    clock = Clock(NOON + 10 * 86400)
    now_ms = int(clock.now * 1000)
    first, second = SaltKeeper(store, clock), SaltKeeper(store, clock)
    assert first.salt_for(now_ms) == second.salt_for(now_ms)
    assert len(first.salt_for(now_ms)) >= 16


def test_salts_older_than_yesterday_are_destroyed(store: Store, engine_dir: Path) -> None:
    clock = Clock(NOON + 20 * 86400)
    keeper = SaltKeeper(store, clock)
    old_salt = keeper.salt_for(int(clock.now * 1000))
    old_day = dt.date.fromtimestamp(clock.now)
    assert files_holding(engine_dir, old_salt.hex())  # the search can find it
    clock.now += 86400
    keeper.salt_for(int(clock.now * 1000))
    assert old_day in keeper.days_with_salts()  # yesterday's salt is kept for one more day
    clock.now += 2 * 86400
    keeper.salt_for(int(clock.now * 1000))
    assert old_day not in keeper.days_with_salts()
    assert all(day >= old_day + dt.timedelta(days=2) for day in keeper.days_with_salts())
    # The bytes left the disk too, not only the query results.
    assert files_holding(engine_dir, old_salt.hex()) == []

"""Memory that hostile input cannot grow: the visit cache and the user-agent cache, measured
with tracemalloc (what each keeps alive once the events are gone)."""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

from collector.enrich.useragent import CACHE_SIZE, MAX_USER_AGENT_LENGTH, classify_user_agent
from collector.event import Event
from collector.privacy import visitor_hash
from collector.visits import VisitTracker
from tests.conftest import CHROME_UA
from tests.reporting_data import make_event

VISITS = 4000
PROPS = 15  # of 2,000 characters each: 30 KB per event, as ingest allows


def hostile_event(number: int) -> Event:
    """A pageview of a new visitor with 30 KB of props of its own."""
    event = make_event(1_000_000 + number, number + 1, f"/landing/{number}")
    return event._replace(prop_keys=[f"key{index}" for index in range(PROPS)],
                          prop_values=[f"{number:08d}" + "v" * 1992 for _ in range(PROPS)])


def kept_alive(build: Callable[[], object]) -> int:
    """Bytes that the object ``build`` returns keeps alive (freed when it goes)."""
    gc.collect()
    tracemalloc.start()
    try:
        built = build()
        gc.collect()
        with_it = tracemalloc.get_traced_memory()[0]
        del built
        gc.collect()
        return with_it - tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def tracked(tracker: VisitTracker, visits: int = VISITS) -> VisitTracker:
    for number in range(visits):
        tracker.track(hostile_event(number))
    return tracker


def test_a_visit_keeps_about_a_kilobyte_and_none_of_its_props() -> None:
    estimates = []

    def tracker_of_hostile_visits() -> VisitTracker:
        tracker = tracked(VisitTracker())
        estimates.append(tracker.estimated_bytes)
        return tracker

    per_visit = kept_alive(tracker_of_hostile_visits) / VISITS
    assert per_visit < 1024  # it was 32 KB with these props: the first event was kept
    assert estimates[0] / VISITS >= per_visit  # the byte bound counts at least what is held


def test_the_visit_cache_holds_to_its_byte_bound() -> None:
    bound = 300 * 1024
    tracker = tracked(VisitTracker(max_bytes=bound))
    assert 0 < tracker.estimated_bytes <= bound
    assert len(tracker) < VISITS / 2
    assert kept_alive(lambda: tracked(VisitTracker(max_bytes=bound))) <= bound
    # The most recent visits are the ones kept: the next event of the last visitor continues.
    last = hostile_event(VISITS - 1)
    assert tracker.is_active(last.site, last.visitor, last.timestamp_ms + 1000)


def test_visits_restarting_after_a_timeout_do_not_inflate_the_estimate() -> None:
    tracker = VisitTracker(timeout_ms=1000)
    first = hostile_event(0)
    tracker.track(first)
    once = tracker.estimated_bytes
    for later in range(1, 50):
        tracker.track(first._replace(timestamp_ms=first.timestamp_ms + later * 2000))
    assert (len(tracker), tracker.estimated_bytes) == (1, once)


def test_only_the_first_characters_of_a_user_agent_count() -> None:
    padded = CHROME_UA + " " + "x" * 1_000_000
    considered = padded[:MAX_USER_AGENT_LENGTH]
    assert classify_user_agent(padded) is classify_user_agent(considered)
    assert classify_user_agent(padded).browser == "Chrome"
    salt = b"s" * 32
    assert visitor_hash(salt, "a.test", "198.51.100.7", padded) == \
        visitor_hash(salt, "a.test", "198.51.100.7", considered)
    assert visitor_hash(salt, "a.test", "198.51.100.7", CHROME_UA) != \
        visitor_hash(salt, "a.test", "198.51.100.7", considered)


def test_the_user_agent_cache_is_bounded_in_bytes_by_its_key_length() -> None:
    agents = 2000

    def cache_of_long_agents() -> None:
        classify_user_agent.cache_clear()
        for number in range(agents):
            classify_user_agent(f"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 "
                                f"Firefox/128.0 {number:08d} " + "a" * 40_000)

    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache_of_long_agents()
        gc.collect()
        per_entry = (tracemalloc.get_traced_memory()[0] - before) / agents
    finally:
        tracemalloc.stop()
        classify_user_agent.cache_clear()
    assert per_entry < 1024  # 40 KB per entry before: the whole header was the key
    assert per_entry * CACHE_SIZE < 20 * 1024 * 1024  # the full cache: README's 18 MiB

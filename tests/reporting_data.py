"""Hand-built events for visit and report tests, stored the way ingest stores them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from collector.event import EVENT_COLUMNS, Event
from collector.storage import Store
from collector.visits import VISIT_COLUMNS, VisitTracker

SITE = "example.com"
# Test data lies in the recent past: older rows would fall to the retention TTL.
DAY0 = datetime.now(UTC).date() - timedelta(days=20)


def day(offset: int = 0) -> date:
    return DAY0 + timedelta(days=offset)


def at(clock: str, day_offset: int = 0) -> int:
    """Milliseconds since the epoch of ``clock`` ('10:00' or '10:00:30') UTC, DAY0 + offset."""
    moment = datetime.combine(day(day_offset), time.fromisoformat(clock), UTC)
    return int(moment.timestamp() * 1000)


def make_event(timestamp_ms: int, visitor: int, pathname: str = "/", name: str = "pageview",
               **fields: Any) -> Event:
    values: dict[str, Any] = {
        "site": SITE, "timestamp_ms": timestamp_ms, "name": name, "visitor": visitor,
        "visit": 0, "hostname": SITE, "pathname": pathname, "referrer": "",
        "referrer_source": "", "referrer_medium": "", "utm_source": "", "utm_medium": "",
        "utm_campaign": "", "utm_term": "", "utm_content": "", "browser": "Chrome",
        "browser_version": "124", "os": "Windows", "os_version": "10", "device": "desktop",
        "screen": "desktop", "language": "en", "country": "DE", "region": "DE-BE",
        "city": "Berlin", "isp": "Example ISP", "prop_keys": [], "prop_values": [],
        "interactive": 1, "scroll_depth": 0, "engaged_ms": 0,
    }
    values.update(fields)
    return Event(**values)


def store_events(store: Store, events: Iterable[Event],
                 tracker: VisitTracker | None = None) -> list[Event]:
    """Track ``events`` (in time order) into visits and insert both tables like the writer."""
    tracker = tracker or VisitTracker()
    tracked: list[Event] = []
    visit_rows: list[tuple[object, ...]] = []
    for event in sorted(events, key=lambda e: e.timestamp_ms):
        with_visit, rows = tracker.track(event)
        tracked.append(with_visit)
        visit_rows.extend(rows)
    if tracked:
        store.insert_columns("events", EVENT_COLUMNS, list(zip(*tracked)))
    if visit_rows:
        store.insert_columns("visits", VISIT_COLUMNS, list(zip(*visit_rows)))
    return tracked


def sample_site_events() -> list[Event]:
    """The hand-built traffic of ``SITE`` whose every figure the report tests know.

    Day 0: visitor 1 (Google, 2 pages then Signup, 360 s), visitor 2 (Twitter, bounce),
    visitor 3 (direct: 2 pages for 600 s, then 50 minutes later a bouncing second visit),
    visitor 4 (direct, /pricing + a non-interactive Download: still a bounce, 60 s).
    Day 1: visitor 5 (Google, / + Signup, 60 s), visitor 6 (Twitter, bounce).
    """
    google = {"referrer_source": "Google", "referrer_medium": "search",
              "referrer": "www.google.com/", "utm_campaign": "spring"}
    twitter = {"referrer_source": "Twitter", "referrer_medium": "social",
               "referrer": "t.co/x", "browser": "Firefox", "browser_version": "125",
               "os": "Linux", "os_version": "", "device": "mobile", "country": "FR",
               "region": "FR-IDF", "city": "Paris"}
    us_mac = {"browser": "Safari", "browser_version": "17", "os": "Mac OS", "os_version": "14",
              "country": "US", "region": "US-CA", "city": "San Francisco", "language": "en"}
    android = {"os": "Android", "os_version": "14", "device": "mobile"}
    return [
        make_event(at("10:00"), 1, "/", **google),
        make_event(at("10:02"), 1, "/pricing"),
        make_event(at("10:05"), 1, "/pricing", name="Signup", prop_keys=["plan"],
                   prop_values=["pro"]),
        make_event(at("10:06"), 1, "/pricing", name="engagement", engaged_ms=30_000),
        make_event(at("11:00"), 2, "/blog/a", **twitter),
        make_event(at("12:00"), 3, "/", **us_mac),
        make_event(at("12:10"), 3, "/blog/b", **us_mac),
        make_event(at("13:00"), 3, "/", **us_mac),
        make_event(at("14:00"), 4, "/pricing"),
        make_event(at("14:01"), 4, "/pricing", name="Download", interactive=0,
                   prop_keys=["file"], prop_values=["guide.pdf"]),
        make_event(at("09:00", 1), 5, "/", **google, **android),
        make_event(at("09:01", 1), 5, "/", name="Signup", prop_keys=["plan"],
                   prop_values=["free"], **google, **android),
        make_event(at("10:00", 1), 6, "/blog/a", **twitter),
    ]

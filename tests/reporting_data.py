"""Traffic for visit and report tests, described as ingest sees it and stored like the writer.

An event is a page URL (campaign tags included), a referrer URL and the client's
attributes. What ingest derives from the two URLs (hostname, pathname, referrer,
source, medium, utm tags) comes from the function the pipeline itself uses,
``collector.acquisition.ArrivalReader``, under the default settings; only the
attributes the pipeline copies from its enrichers (browser, OS, place...) are given.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from collector.acquisition import ArrivalReader
from collector.event import EVENT_COLUMNS, Event
from collector.settings import Settings
from collector.storage import Store
from collector.visits import VISIT_COLUMNS, VisitTracker

SITE = "example.com"
# Test data lies in the recent past: older rows would fall to the retention TTL.
DAY0 = datetime.now(UTC).date() - timedelta(days=20)
ARRIVALS = ArrivalReader.from_settings(Settings.from_env({}))
# What the enrichers would have said of the client, unless a test says otherwise.
CLIENT = {"browser": "Chrome", "browser_version": "124", "os": "Windows", "os_version": "10",
          "device": "desktop", "screen": "desktop", "language": "en", "country": "DE",
          "region": "DE-BE", "city": "Berlin", "isp": "Example ISP", "prop_keys": [],
          "prop_values": [], "interactive": 1, "scroll_depth": 0, "engaged_ms": 0}
GOOGLE = "https://www.google.com/"
TWITTER = "https://t.co/x"


def day(offset: int = 0) -> date:
    return DAY0 + timedelta(days=offset)


def at(clock: str, day_offset: int = 0) -> int:
    """Milliseconds since the epoch of ``clock`` ('10:00' or '10:00:30') UTC, DAY0 + offset."""
    moment = datetime.combine(day(day_offset), time.fromisoformat(clock), UTC)
    return int(moment.timestamp() * 1000)


def make_event(timestamp_ms: int, visitor: int, page: str = "/", name: str = "pageview", *,
               referrer: str | None = None, site: str = SITE, **client: Any) -> Event:
    """The event ingest stores for ``page`` (path and query) of ``site`` reached from
    ``referrer`` (a full URL); ``client`` overrides ``CLIENT`` and nothing else."""
    unknown = client.keys() - CLIENT.keys()
    if unknown:  # a derived field given by hand would hide what ingest makes of the URLs
        raise TypeError(f"not a client attribute: {sorted(unknown)}; describe the URLs")
    arrival = ARRIVALS.read(f"https://{site}{page}", referrer)
    return Event(site=site, timestamp_ms=timestamp_ms, name=name, visitor=visitor, visit=0,
                 **arrival.event_fields(), **{**CLIENT, **client})


# The events columns of a store migrated to before 0010 (which added the revenue ones).
COLUMNS_BEFORE_REVENUE = tuple(name for name in EVENT_COLUMNS if not name.startswith("revenue_"))
VISIT_COLUMNS_BEFORE_EXIT_HOST = tuple(name for name in VISIT_COLUMNS if name != "exit_hostname")


def store_events(store: Store, events: Iterable[Event], tracker: VisitTracker | None = None,
                 event_columns: tuple[str, ...] = EVENT_COLUMNS,
                 visit_columns: tuple[str, ...] = VISIT_COLUMNS) -> list[Event]:
    """Track ``events`` (in time order) into visits and insert both tables like the writer
    (only ``event_columns`` of events and ``visit_columns`` of visits: a store migrated
    part of the way has fewer)."""
    tracker = tracker or VisitTracker()
    tracked: list[Event] = []
    visit_rows: list[tuple[object, ...]] = []
    for event in sorted(events, key=lambda e: e.timestamp_ms):
        with_visit, rows = tracker.track(event)
        tracked.append(with_visit)
        visit_rows.extend(rows)
    if tracked:
        columns = [values for name, values in zip(EVENT_COLUMNS, zip(*tracked))
                   if name in event_columns]
        store.insert_columns("events", event_columns, columns)
    if visit_rows:
        columns = [values for name, values in zip(VISIT_COLUMNS, zip(*visit_rows))
                   if name in visit_columns]
        store.insert_columns("visits", visit_columns, columns)
    return tracked


def sample_site_events() -> list[Event]:
    """The traffic of ``SITE`` whose every figure the report tests know.

    Day 0: visitor 1 (Google, 2 pages then Signup, 360 s), visitor 2 (X, bounce),
    visitor 3 (direct: 2 pages for 600 s, then 50 minutes later a bouncing second visit),
    visitor 4 (direct, /pricing + a non-interactive Download: still a bounce, 60 s).
    Day 1: visitor 5 (Google, / + Signup, 60 s), visitor 6 (X, bounce).
    Google's visitors land on "/?utm_campaign=spring"; later pages of a visit have no
    referrer, as a browser's link inside the site is a self-referral ingest drops.
    """
    twitter = {"browser": "Firefox", "browser_version": "125", "os": "Linux", "os_version": "",
               "device": "mobile", "country": "FR", "region": "FR-IDF", "city": "Paris"}
    us_mac = {"browser": "Safari", "browser_version": "17", "os": "Mac OS", "os_version": "14",
              "country": "US", "region": "US-CA", "city": "San Francisco", "language": "en"}
    android = {"os": "Android", "os_version": "14", "device": "mobile"}
    spring = "/?utm_campaign=spring"
    return [
        make_event(at("10:00"), 1, spring, referrer=GOOGLE),
        make_event(at("10:02"), 1, "/pricing"),
        make_event(at("10:05"), 1, "/pricing", name="Signup", prop_keys=["plan"],
                   prop_values=["pro"]),
        make_event(at("10:06"), 1, "/pricing", name="engagement", engaged_ms=30_000),
        make_event(at("11:00"), 2, "/blog/a", referrer=TWITTER, **twitter),
        make_event(at("12:00"), 3, "/", **us_mac),
        make_event(at("12:10"), 3, "/blog/b", **us_mac),
        make_event(at("13:00"), 3, "/", **us_mac),
        make_event(at("14:00"), 4, "/pricing"),
        make_event(at("14:01"), 4, "/pricing", name="Download", interactive=0,
                   prop_keys=["file"], prop_values=["guide.pdf"]),
        make_event(at("09:00", 1), 5, spring, referrer=GOOGLE, **android),
        make_event(at("09:01", 1), 5, spring, name="Signup", referrer=GOOGLE,
                   prop_keys=["plan"], prop_values=["free"], **android),
        make_event(at("10:00", 1), 6, "/blog/a", referrer=TWITTER, **twitter),
    ]

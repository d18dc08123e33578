"""Synthetic demo traffic, generated inside ClickHouse: ``INSERT ... SELECT FROM numbers()``.

Every visit ``i`` is a pure function of ``(seed, i)`` through ``cityHash64``, so
the ``visits`` insert and the ``events`` insert (one row per event of each
visit, via ``ARRAY JOIN``) compute the same visits independently and agree:
same ids, visitors, pages, times and counts. Nothing passes through Python; the
rollups fill through their materialized views like real traffic, at
about 600k events/s on 2 cores (see docs/reports.md "Demo generation").

Shapes: a diurnal curve, Zipf-like pages and referrers (log-uniform ranks),
weighted browser/OS/device/country mixes, 1–8 pageviews per visit, and a few
custom events (which make a visit interactive, so not a bounce).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate

from collector.channels import channel_of
from collector.schema import column_names
from collector.storage import Store, open_store

HOURLY_WEIGHTS = (2, 1, 1, 1, 1, 2, 3, 5, 7, 8, 9, 9, 8, 8, 9, 9, 8, 7, 7, 7, 6, 5, 4, 3)
PAGEVIEW_WEIGHTS = (48, 20, 12, 8, 5, 3, 2, 2)  # visits with 1, 2, ... 8 pageviews
CUSTOM_EVENT_SHARE = 0.1
CUSTOM_EVENTS = ("Signup", "Download", "Outbound Link: Click")
# (source, medium, referrer, utm_source, utm_medium, weight): source, medium and referrer
# exactly as ingest stores them for that referrer and those tags (a test holds them to it).
SOURCES = (
    ("", "direct", "", "", "", 40), ("Google", "search", "google.com", "", "", 30),
    ("Bing", "search", "bing.com", "", "", 4), ("DuckDuckGo", "search", "duckduckgo.com", "",
                                                "", 3),
    ("X", "social", "t.co", "", "", 5), ("Facebook", "social", "facebook.com", "", "", 4),
    ("Reddit", "social", "reddit.com/r/webdev/", "", "", 3),
    ("Hacker News", "social", "news.ycombinator.com/item", "", "", 3),
    ("github.com", "referral", "github.com", "", "", 2),
    ("ChatGPT", "ai-assistant", "chatgpt.com", "chatgpt.com", "", 2),
    ("ChatGPT", "ai-assistant", "", "chatgpt.com", "", 1),
    ("newsletter", "direct", "", "newsletter", "email", 3),
    ("Google", "search", "google.com", "google", "cpc", 3),
)
# Client names as ingest gives them (Plausible's: collector.enrich.useragent).
BROWSERS = (("Chrome", "124.0", 55), ("Safari", "17.4", 20), ("Firefox", "125.0", 8),
            ("Microsoft Edge", "124.0", 10), ("Samsung Browser", "24.0", 4),
            ("Opera", "109.0", 3))
SYSTEMS = (("Windows", "10", "Desktop", "desktop", 38), ("Mac", "14.4", "Desktop", "desktop", 17),
           ("Android", "14", "Mobile", "mobile", 24), ("iOS", "17.4", "Mobile", "mobile", 15),
           ("GNU/Linux", "", "Desktop", "desktop", 4), ("iOS", "17.4", "Tablet", "tablet", 2))
PLACES = (("US", "US-CA", "San Francisco", "en", "Comcast", 25), ("US", "US-NY", "New York", "en",
                                                                    "Verizon", 10),
          ("DE", "DE-BE", "Berlin", "de", "Deutsche Telekom", 12),
          ("GB", "GB-ENG", "London", "en", "BT", 9), ("FR", "FR-IDF", "Paris", "fr", "Orange", 8),
          ("IN", "IN-KA", "Bengaluru", "en", "Jio", 10), ("BR", "BR-SP", "São Paulo", "pt",
                                                          "Vivo", 6),
          ("JP", "JP-13", "Tokyo", "ja", "NTT", 6), ("NL", "NL-NH", "Amsterdam", "nl", "KPN", 4),
          ("CA", "CA-ON", "Toronto", "en", "Rogers", 5), ("PL", "PL-MZ", "Warsaw", "pl",
                                                          "Orange Polska", 5))
TOP_PAGES = ("/", "/pricing", "/features", "/docs", "/blog", "/about", "/signup", "/login",
             "/docs/getting-started", "/contact")
PAGE_COUNT = 2000
CHUNK_VISITS = 400_000
DEMO_WORKERS = 2  # concurrent inserts: one per core here
# Demo rows are final visit states: nothing to collapse or merge while inserting.
INSERT_SETTINGS = {"optimize_on_insert": 0}


@dataclass(frozen=True)
class DemoResult:
    events: int
    visits: int
    seconds: float

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


def expected_events_per_visit() -> float:
    total = sum(PAGEVIEW_WEIGHTS)
    return sum((index + 1) * weight for index, weight in enumerate(PAGEVIEW_WEIGHTS)) / total \
        + CUSTOM_EVENT_SHARE


def generate(store: Store, site: str, events: int, days: int, seed: int = 1,
             now: datetime | None = None,
             progress: Callable[[int, int, float], None] | None = None) -> DemoResult:
    """Write about ``events`` events (and their visits) spread over the last ``days`` days.

    Each chunk of visits is two inserts (visits, events), each one insert pipeline with
    its rollup views. Workers on their own connections take the next insert from one
    queue, so both cores stay busy whichever half of a chunk is slower.
    """
    visits = max(1, round(events / expected_events_per_visit()))
    end = int((now or datetime.now(UTC)).timestamp())
    firsts = range(0, visits, CHUNK_VISITS)
    chunks = [_parameters(site, seed, first, min(CHUNK_VISITS, visits - first), visits, days,
                          end) for first in firsts]
    inserts = (_visits_sql(), _events_sql())
    work = iter([(index, insert) for index in range(len(chunks)) for insert in inserts])
    halves = [0] * len(chunks)  # inserts finished per chunk
    lock = threading.Lock()
    failed = threading.Event()  # one failing insert stops the other workers
    before = _stored_events(store, site)
    started = time.perf_counter()

    def worker(connection: Store) -> None:
        while not failed.is_set():
            with lock:
                index, insert = next(work, (-1, ""))
            if index < 0:
                return
            try:
                connection.command(insert, chunks[index], settings=INSERT_SETTINGS)
            except BaseException:
                failed.set()
                raise
            with lock:
                halves[index] += 1
                complete = next((i for i, done in enumerate(halves) if done < 2), len(chunks))
            if progress:
                written = events if complete == len(chunks) else min(
                    events, round(firsts[complete] * expected_events_per_visit()))
                progress(written, events, time.perf_counter() - started)

    connections = [store] + [open_store(store.url, store.database)
                             for _ in range(DEMO_WORKERS - 1)]
    try:
        with ThreadPoolExecutor(max_workers=len(connections)) as pool:
            for job in [pool.submit(worker, connection) for connection in connections]:
                job.result()
    finally:
        for connection in connections[1:]:
            connection.close()
    seconds = time.perf_counter() - started
    return DemoResult(_stored_events(store, site) - before, visits, seconds)


def _stored_events(store: Store, site: str) -> int:
    return int(store.rows("SELECT count() FROM events WHERE site = {site:String}",
                          {"site": site})[0][0])


def progress_bar(done: int, total: int, seconds: float) -> None:
    """One stderr line per chunk: bar, share, count and rate."""
    width = 30
    filled = int(width * done / total) if total else width
    rate = done / seconds if seconds else 0.0
    print(f"\r[{'#' * filled}{'.' * (width - filled)}] {100 * done / total:5.1f}% "
          f"{done:,}/{total:,} events {rate:,.0f}/s", end="", file=sys.stderr, flush=True)


def _cumulative(weights: list[float]) -> list[float]:
    total = sum(weights)
    return [value / total for value in accumulate(weights)]


def _parameters(site: str, seed: int, first: int, count: int, visits: int, days: int,
                end: int) -> dict[str, object]:
    channels = [channel_of(source, medium, utm_source, utm_medium, "")
                for source, medium, _, utm_source, utm_medium, _ in SOURCES]
    return {
        "site": site, "seed": seed, "first": first, "count": count, "days": days, "end": end,
        "visits": visits,
        "visitors_per_day": max(1, int(visits / days / 1.4)),
        "hours": _cumulative(list(HOURLY_WEIGHTS)),
        "pageview_weights": _cumulative(list(PAGEVIEW_WEIGHTS)),
        "custom_share": CUSTOM_EVENT_SHARE, "custom_events": list(CUSTOM_EVENTS),
        "source_weights": _cumulative([row[5] for row in SOURCES]),
        "sources": [row[0] for row in SOURCES], "mediums": [row[1] for row in SOURCES],
        "referrers": [row[2] for row in SOURCES], "utm_sources": [row[3] for row in SOURCES],
        "utm_mediums": [row[4] for row in SOURCES], "channels": channels,
        "browser_weights": _cumulative([row[2] for row in BROWSERS]),
        "browsers": [row[0] for row in BROWSERS], "browser_versions": [row[1] for row in BROWSERS],
        "system_weights": _cumulative([row[4] for row in SYSTEMS]),
        "systems": [row[0] for row in SYSTEMS], "system_versions": [row[1] for row in SYSTEMS],
        "devices": [row[2] for row in SYSTEMS], "screens": [row[3] for row in SYSTEMS],
        "place_weights": _cumulative([row[5] for row in PLACES]),
        "countries": [row[0] for row in PLACES], "regions": [row[1] for row in PLACES],
        "cities": [row[2] for row in PLACES], "languages": [row[3] for row in PLACES],
        "isps": [row[4] for row in PLACES], "top_pages": list(TOP_PAGES),
        "page_count": PAGE_COUNT,
    }


# A uniform number in [0, 1) from (seed, visit number, salt).
_U = "(cityHash64({seed:UInt64}, number, %d) %% 1000000007) / 1000000007.0"


def _pick(weights: str, salt: int) -> str:
    return f"arrayFirstIndex(c -> c >= {_U % salt}, {{{weights}:Array(Float64)}})"


def _pages() -> str:
    """Zipf-like pages: rank = floor(N^u) - 1 is log-uniform over 0..N-1."""
    ranks = ("arrayMap(k -> toUInt32(floor(pow({page_count:UInt32}, "
             "(cityHash64({seed:UInt64}, number, 100 + k) % 1000003) / 1000003.0))) - 1, "
             "range(pageviews))")
    return (f"arrayMap(rank -> if(rank < 10, {{top_pages:Array(String)}}[rank + 1], "
            f"concat(if(rank % 3 = 0, '/docs/page-', '/blog/post-'), toString(rank))), {ranks})")


def _visit_attributes() -> str:
    """One row per visit ``number`` with every attribute, shared by both inserts."""
    return f"""
SELECT
    number,
    -- Visits come in time order, so each chunk touches few rollup hours (as live traffic does).
    intDiv(number * {{days:UInt32}}, {{visits:UInt64}}) AS day_index,
    {_pick('hours', 2)} - 1 AS hour,
    (cityHash64({{seed:UInt64}}, number, 3) % 3600) AS second_in_hour,
    intDiv({{end:UInt32}}, 86400) * 86400 - ({{days:UInt32}} - 1 - day_index) * 86400
        + hour * 3600 + second_in_hour AS planned_s,
    -- Visits that would not be over by now move to yesterday: nothing lies in the future.
    -- Shortly after midnight a visit planned late today still ends after ``end`` a day
    -- earlier, so a moved visit also starts no later than ``end - 1 - duration``.
    if(planned_s + (pageviews + customs - 1) * gap >= {{end:UInt32}},
       least(planned_s - 86400, toInt64({{end:UInt32}}) - 1 - (pageviews + customs - 1) * gap),
       planned_s) AS start_s,
    cityHash64({{site:String}}, {{seed:UInt64}}, day_index,
               cityHash64({{seed:UInt64}}, number, 4) % {{visitors_per_day:UInt32}}) AS visitor_id,
    cityHash64({{site:String}}, {{seed:UInt64}}, number, 'visit') AS visit_id,
    {_pick('pageview_weights', 5)} AS pageviews,
    toUInt32({_U % 6} < {{custom_share:Float64}}) AS customs,
    10 + cityHash64({{seed:UInt64}}, number, 7) % 110 AS gap,
    {_pick('source_weights', 8)} AS s,
    {_pick('browser_weights', 9)} AS b,
    {_pick('system_weights', 10)} AS o,
    {_pick('place_weights', 11)} AS g,
    {{custom_events:Array(String)}}[1 + cityHash64({{seed:UInt64}}, number, 12) % 3] AS custom_name,
    {_pages()} AS pages
FROM numbers({{first:UInt64}}, {{count:UInt64}})
"""


# The expression of every column of each table, by name; ``_select`` orders them as
# ``collector.schema`` declares the table and fails on a column without one.
_SHARED = {
    "referrer": "{referrers:Array(String)}[s]", "referrer_source": "{sources:Array(String)}[s]",
    "referrer_medium": "{mediums:Array(String)}[s]",
    "utm_source": "{utm_sources:Array(String)}[s]", "utm_medium": "{utm_mediums:Array(String)}[s]",
    "utm_campaign": "if({utm_sources:Array(String)}[s] = '', '', 'spring-launch')",
    "utm_term": "''", "utm_content": "''",
    "browser": "{browsers:Array(String)}[b]",
    "browser_version": "{browser_versions:Array(String)}[b]",
    "os": "{systems:Array(String)}[o]", "os_version": "{system_versions:Array(String)}[o]",
    "device": "{devices:Array(String)}[o]", "screen": "{screens:Array(String)}[o]",
    "language": "{languages:Array(String)}[g]", "country": "{countries:Array(String)}[g]",
    "region": "{regions:Array(String)}[g]", "city": "{cities:Array(String)}[g]",
    "isp": "{isps:Array(String)}[g]",
}
_LAST_EVENT = "(pageviews + customs - 1) * gap"
VISIT_EXPRESSIONS = {
    **_SHARED, "site": "{site:String}", "visitor": "visitor_id", "visit": "visit_id",
    "start_time": "toDateTime64(start_s, 3, 'UTC')", "duration": _LAST_EVENT,
    "pageviews": "pageviews", "events": "pageviews + customs", "interactive_events": "customs",
    "is_bounce": "pageviews = 1 AND customs = 0", "engaged_ms": "0",
    "entry_page": "pages[1]", "exit_page": "pages[-1]", "hostname": "{site:String}",
    "exit_hostname": "{site:String}",
    "channel": "{channels:Array(String)}[s]", "sign": "1", "version": "0",
}
EVENT_EXPRESSIONS = {
    **_SHARED, "site": "{site:String}", "timestamp": "toDateTime64(start_s + k * gap, 3, 'UTC')",
    "name": "if(k < pageviews, 'pageview', custom_name)", "visitor": "visitor_id",
    "visit": "visit_id", "hostname": "{site:String}",
    "pathname": "if(k < pageviews, pages[k + 1], pages[-1])",
    "prop_keys": "if(k < pageviews, [], ['plan'])", "prop_values": "if(k < pageviews, [], ['pro'])",
    "interactive": "1", "scroll_depth": "0", "engaged_ms": "0",
    "revenue_amount": "0", "revenue_currency": "''",
}


def _select(table: str, expressions: dict[str, str]) -> tuple[str, str]:
    """(column list, SELECT list) of ``table`` in its declared order."""
    names = column_names(table)
    return ", ".join(names), ",\n    ".join(expressions[name] for name in names)


def _visits_sql() -> str:
    columns, selected = _select("visits", VISIT_EXPRESSIONS)
    return f"""
INSERT INTO visits ({columns})
SELECT {selected}
FROM ({_visit_attributes()})
"""


def _events_sql() -> str:
    columns, selected = _select("events", EVENT_EXPRESSIONS)
    return f"""
INSERT INTO events ({columns})
SELECT {selected}
FROM ({_visit_attributes()})
ARRAY JOIN range(pageviews + customs) AS k
"""

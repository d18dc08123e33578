"""The one value that reaches storage: an ``Event`` with exactly the stored columns.

There is no field for an IP address, a raw user agent, a query string or an
exact screen size, so none of them can be written by accident: the type is the
proof. It is a NamedTuple because the writer turns a batch of them into columns
with one ``zip(*events)``, the cheapest way into a columnar insert.
"""

from __future__ import annotations

from typing import NamedTuple


class Event(NamedTuple):
    site: str
    timestamp_ms: int  # server clock, never the client's
    name: str
    visitor: int  # UInt64 keyed hash of (daily salt, site, IP, user agent)
    visit: int  # UInt64 id of the visit this event belongs to (0 when not tracked)
    hostname: str
    pathname: str
    referrer: str  # host + path only
    referrer_source: str
    referrer_medium: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_term: str
    utm_content: str
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str  # desktop | mobile | tablet | other
    screen: str  # size class, never the exact width
    language: str
    country: str
    region: str
    city: str
    isp: str
    prop_keys: list[str]
    prop_values: list[str]
    interactive: int  # 1 unless the tracker marked the event non-interactive
    scroll_depth: int
    engaged_ms: int


# Column names in table order; ``timestamp_ms`` is stored as ``timestamp``.
EVENT_COLUMNS: tuple[str, ...] = tuple(
    "timestamp" if name == "timestamp_ms" else name for name in Event._fields
)

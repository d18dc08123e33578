"""The values that reach storage: an ``Event`` and a ``VisitRow``, exactly the stored columns.

There is no field for an IP address, a raw user agent, a query string or an
exact screen size, so none of them can be written by accident: the types are
the proof. Both are NamedTuples because the writer turns a batch of them into
columns with one ``zip(*rows)``, the cheapest way into a columnar insert. Their
fields are checked against ``collector.schema`` when this module is imported,
so a column cannot be added, dropped or reordered in one place only. Build
them by keyword: two string fields swapped by position would go unnoticed. The
two per-event paths that build by position for speed (``collector.pipeline``,
``collector.visits``) check the field order they rely on when imported.
"""

from __future__ import annotations

from typing import NamedTuple

from collector.schema import column_names


class Event(NamedTuple):
    site: str
    timestamp_ms: int  # server clock, never the client's (column ``timestamp``)
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
    revenue_amount: int = 0  # millionths of the currency unit
    revenue_currency: str = ""  # ISO 4217, "" for an event without revenue


class VisitRow(NamedTuple):
    """One state of a visit in the ``visits`` table (see ``collector.visits``)."""

    site: str
    visitor: int
    visit: int
    start_time_ms: int  # column ``start_time``
    duration: int  # seconds
    pageviews: int
    events: int
    interactive_events: int
    is_bounce: int
    engaged_ms: int
    entry_page: str
    exit_page: str
    hostname: str
    referrer: str
    referrer_source: str
    referrer_medium: str
    channel: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_term: str
    utm_content: str
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str
    screen: str
    language: str
    country: str
    region: str
    city: str
    isp: str
    sign: int  # +1 a state, -1 the cancellation of the previous one
    version: int
    exit_hostname: str  # the host of the last page, as ``exit_page`` is its path


def _stored_names(fields: tuple[str, ...]) -> tuple[str, ...]:
    """Field names as column names: times are held in milliseconds (``_ms``)."""
    renamed = {"timestamp_ms": "timestamp", "start_time_ms": "start_time"}
    return tuple(renamed.get(name, name) for name in fields)


EVENT_COLUMNS: tuple[str, ...] = _stored_names(Event._fields)
VISIT_COLUMNS: tuple[str, ...] = _stored_names(VisitRow._fields)

for _value, _table, _columns in (("Event", "events", EVENT_COLUMNS),
                                 ("VisitRow", "visits", VISIT_COLUMNS)):
    if _columns != column_names(_table):
        raise ImportError(f"collector.event.{_value} does not match the {_table} table "
                          f"declared in collector.schema: {_columns} != {column_names(_table)}")

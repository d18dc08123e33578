"""Visits, maintained at ingest: a visitor's run of events with gaps under 30 minutes.

``VisitTracker`` keeps the current visit of each (site, visitor) in a bounded
in-memory cache. Every tracked event gets its visit id, and the visit's new
state goes to the ``visits`` table (a VersionedCollapsingMergeTree, Plausible's
design): an update writes a ``sign = -1`` row cancelling the previous state and
a ``sign = +1`` row with the new one. All visit metrics are sums over ``sign``
(visits = sum(sign), bounces = sum(sign * is_bounce), ...), so they are right
before and after ClickHouse collapses the rows, and so are the rollups that
materialized views build from the inserted rows.

A cached visit keeps its last row and the time of its last event, nothing of the
events themselves (props included): about 1 KB per visit, bounded by entries and by
an estimate of bytes.

Several collectors behind one load balancer must route each client address to
the same collector (consistent hashing by IP), or one visit would be tracked
twice. A restart forgets the cache: people mid-visit start a new visit.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from operator import itemgetter
from typing import cast, get_type_hints

from collector.channels import channel_of
from collector.event import VISIT_COLUMNS, Event, VisitRow
from collector.ingest import MAX_ENGAGEMENT_MS
from collector.schema import VISIT_ATTRIBUTES

__all__ = ["VISIT_COLUMNS", "VisitTracker", "visit_id_of"]

VISIT_TIMEOUT_MS = 30 * 60 * 1000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
PAGEVIEW = "pageview"
ENGAGEMENT = "engagement"

# A visit row is the tracker's state (these fields, in this order), the attributes of
# its first event (and the channel derived from them), then sign, version and the exit
# page's host (a column added later, so at the end: see collector.schema). The
# layout is checked against ``VisitRow`` here, so the row can be built from tuples on
# the ingest path (a 35-keyword call per event costs more than the rest of tracking)
# while every attribute is still taken from the event by name.
_STATE = ("site", "visitor", "visit", "start_time_ms", "duration", "pageviews", "events",
          "interactive_events", "is_bounce", "engaged_ms", "entry_page", "exit_page")
_TAIL = ("sign", "version", "exit_hostname")
_ATTRIBUTES = VisitRow._fields[len(_STATE):-len(_TAIL)]
if VisitRow._fields[:len(_STATE)] != _STATE or VisitRow._fields[-len(_TAIL):] != _TAIL \
        or set(_ATTRIBUTES) != {column.name for column in VISIT_ATTRIBUTES} | {"channel"}:
    raise ImportError("collector.visits: VisitRow no longer has the layout the tracker builds")
_CHANNEL_AT = _ATTRIBUTES.index("channel")
_first_event_attributes = itemgetter(*(Event._fields.index(name) for name in _ATTRIBUTES
                                       if name != "channel"))
_TEXT_FROM = _STATE.index("entry_page")  # entry page, exit page, then the attributes
_ATTRIBUTES_FROM = len(_STATE)
_SIGN = VisitRow._fields.index("sign")
_VISIT_AT = Event._fields.index("visit")
if any(get_type_hints(VisitRow)[name] is not str for name in VisitRow._fields[_TEXT_FROM:_SIGN]):
    raise ImportError("collector.visits: a visit attribute is no longer a string")
# Bytes a cached visit costs besides its strings' characters, measured with tracemalloc
# (tests/test_memory.py keeps it an upper bound): the cache entry and its key, the
# _Visit, the row tuple and its integers, the string headers.
VISIT_OVERHEAD_BYTES = 1000


@dataclass(slots=True)
class _Visit:
    """What later events of a visit need: its last +1 row and the time of its last event.

    The row carries the state (counters, entry and exit pages, version) and the first
    event's attributes; the first event itself is not kept, as its props alone can weigh
    60 KB.
    """

    row: VisitRow
    end_ms: int
    size: int  # estimated bytes, for the cache's byte bound


def _opening_row(event: Event, visit_id: int) -> VisitRow:
    """The first state of a visit that ``event`` starts (never an engagement event)."""
    copied = _first_event_attributes(event)
    channel = channel_of(event.referrer_source, event.referrer_medium,
                         event.utm_source, event.utm_medium, event.utm_campaign)
    pageview = event.name == PAGEVIEW
    interactive = int(not pageview and bool(event.interactive))
    return VisitRow._make((  # in the order of _STATE, checked above
        event.site, event.visitor, visit_id, event.timestamp_ms, 0, int(pageview), 1,
        interactive, int(pageview), 0, event.pathname, event.pathname,  # a bounce so far
        *copied[:_CHANNEL_AT], channel, *copied[_CHANNEL_AT:], 1, 0, event.hostname))


def _continued_row(row: VisitRow, end_ms: int, event: Event) -> VisitRow:
    """The next state of the visit in ``row`` once ``event`` (ending at ``end_ms``) is in."""
    pageviews, events, interactive = row.pageviews, row.events, row.interactive_events
    engaged_ms, exit_page, exit_hostname = row.engaged_ms, row.exit_page, row.exit_hostname
    if event.name == ENGAGEMENT:
        # Saturating: time on the visit's pages outgrows its span by one report at most,
        # and never wraps the UInt32 column.
        engaged_ms = min(engaged_ms + event.engaged_ms,
                         end_ms - row.start_time_ms + MAX_ENGAGEMENT_MS, 2**32 - 1)
    else:
        events += 1
        if event.name == PAGEVIEW:
            pageviews += 1
            exit_page, exit_hostname = event.pathname, event.hostname
        elif event.interactive:
            interactive += 1
    # The tracker's engagement time is better than the gap between hits when it is longer.
    duration = max(end_ms - row.start_time_ms, engaged_ms) // 1000
    return VisitRow._make((
        row.site, row.visitor, row.visit, row.start_time_ms, duration, pageviews, events,
        interactive, int(pageviews == 1 and interactive == 0), engaged_ms, row.entry_page,
        exit_page, *row[_ATTRIBUTES_FROM:_SIGN], 1, row.version + 1, exit_hostname))


def _with_visit(event: Event, visit_id: int) -> Event:
    """``event`` with its visit id (a copy by position: half the cost of ``_replace``)."""
    return Event._make((*event[:_VISIT_AT], visit_id, *event[_VISIT_AT + 1:]))


def _estimated_size(row: VisitRow) -> int:
    # Characters as bytes: paths and referrers are percent-encoded ASCII; the attributes
    # shared between visits (browser names, countries) are counted once per visit anyway.
    texts = cast("tuple[str, ...]", row[_TEXT_FROM:_SIGN])  # every field there is a string
    return VISIT_OVERHEAD_BYTES + sum(map(len, texts))


def visit_id_of(site: str, visitor: int, start_ms: int) -> int:
    """A stable UInt64 id: the same on every collector that sees the same first event."""
    digest = hashlib.blake2b(f"{site}\0{visitor}\0{start_ms}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class VisitTracker:
    """Assigns events to visits and produces the collapsing rows of the ``visits`` table.

    The cache holds about ``max_bytes`` bytes (an estimate from the visits' strings
    and ``VISIT_OVERHEAD_BYTES`` each), so at most ``max_bytes // VISIT_OVERHEAD_BYTES``
    visits, and at most ``max_visits`` when given (tests); beyond that the least recent
    visits are forgotten, and their visitors' next events start new visits.
    """

    def __init__(self, timeout_ms: int = VISIT_TIMEOUT_MS, max_visits: int | None = None,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self._timeout_ms = timeout_ms
        # The memory setting alone decides how many visits fit: a fixed count would
        # forget visits early on a collector given more memory for them.
        self._max_visits = max_bytes // VISIT_OVERHEAD_BYTES if max_visits is None \
            else max_visits
        self._max_bytes = max_bytes
        self._visits: OrderedDict[tuple[str, int], _Visit] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._visits)

    @property
    def estimated_bytes(self) -> int:
        """The cache's size as its bound counts it."""
        return self._bytes

    def is_active(self, site: str, visitor: int, timestamp_ms: int) -> bool:
        """True when ``visitor`` has a visit on ``site`` that an event now would continue."""
        current = self._visits.get((site, visitor))
        return current is not None and timestamp_ms - current.end_ms < self._timeout_ms

    def track(self, event: Event) -> tuple[Event, list[VisitRow]]:
        """The event with its ``visit`` id, and the rows to append to ``visits``."""
        key = (event.site, event.visitor)
        current = self._visits.get(key)
        if current is not None and event.timestamp_ms - current.end_ms >= self._timeout_ms:
            current = None
        if current is None:
            if event.name == ENGAGEMENT:
                # Engagement reports on a page already counted; alone it is not a visit.
                return event, []
            return self._start(key, event)
        previous = current.row
        cancelled = VisitRow._make((*previous[:_SIGN], -1, *previous[_SIGN + 1:]))
        current.end_ms = max(current.end_ms, event.timestamp_ms)
        current.row = _continued_row(previous, current.end_ms, event)
        if current.row.exit_page is not previous.exit_page:
            grown = len(current.row.exit_page) - len(previous.exit_page)
            current.size += grown
            self._bytes += grown
        self._visits.move_to_end(key)
        return _with_visit(event, previous.visit), [cancelled, current.row]

    def _start(self, key: tuple[str, int], event: Event) -> tuple[Event, list[VisitRow]]:
        visit_id = visit_id_of(event.site, event.visitor, event.timestamp_ms)
        row = _opening_row(event, visit_id)
        replaced = self._visits.pop(key, None)  # a timed-out visit of the same visitor
        if replaced is not None:
            self._bytes -= replaced.size
        visit = _Visit(row, event.timestamp_ms, _estimated_size(row))
        self._visits[key] = visit
        self._bytes += visit.size
        self._evict(event.timestamp_ms)
        return _with_visit(event, visit_id), [row]

    def _evict(self, now_ms: int) -> None:
        """Drop visits that timed out, and the least recent ones beyond the bounds."""
        while self._visits:
            key, oldest = next(iter(self._visits.items()))
            expired = now_ms - oldest.end_ms >= self._timeout_ms
            if not expired and len(self._visits) <= self._max_visits \
                    and self._bytes <= self._max_bytes:
                return
            del self._visits[key]
            self._bytes -= oldest.size

"""Visits, maintained at ingest: a visitor's run of events with gaps under 30 minutes.

``VisitTracker`` keeps the current visit of each (site, visitor) in a bounded
in-memory cache. Every tracked event gets its visit id, and the visit's new
state goes to the ``visits`` table (a VersionedCollapsingMergeTree, Plausible's
design): an update writes a ``sign = -1`` row cancelling the previous state and
a ``sign = +1`` row with the new one. All visit metrics are sums over ``sign``
(visits = sum(sign), bounces = sum(sign * is_bounce), ...), so they are right
before and after ClickHouse collapses the rows, and so are the rollups that
materialized views build from the inserted rows.

Several collectors behind one load balancer must route each client address to
the same collector (consistent hashing by IP), or one visit would be tracked
twice. A restart forgets the cache: people mid-visit start a new visit.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from operator import itemgetter

from collector.channels import channel_of
from collector.event import VISIT_COLUMNS, Event, VisitRow
from collector.schema import VISIT_ATTRIBUTES

__all__ = ["VISIT_COLUMNS", "VisitTracker", "visit_id_of"]

VISIT_TIMEOUT_MS = 30 * 60 * 1000
DEFAULT_MAX_VISITS = 200_000
PAGEVIEW = "pageview"
ENGAGEMENT = "engagement"

# A visit row is the tracker's state (these fields, in this order), the attributes of
# its first event (and the channel derived from them), then sign and version. The
# layout is checked against ``VisitRow`` here, so the row can be built from tuples on
# the ingest path (a 35-keyword call per event costs more than the rest of tracking)
# while every attribute is still taken from the event by name.
_STATE = ("site", "visitor", "visit", "start_time_ms", "duration", "pageviews", "events",
          "interactive_events", "is_bounce", "engaged_ms", "entry_page", "exit_page")
_ATTRIBUTES = VisitRow._fields[len(_STATE):-2]
if VisitRow._fields[:len(_STATE)] != _STATE or VisitRow._fields[-2:] != ("sign", "version") \
        or set(_ATTRIBUTES) != {column.name for column in VISIT_ATTRIBUTES} | {"channel"}:
    raise ImportError("collector.visits: VisitRow no longer has the layout the tracker builds")
_CHANNEL_AT = _ATTRIBUTES.index("channel")
_first_event_attributes = itemgetter(*(Event._fields.index(name) for name in _ATTRIBUTES
                                       if name != "channel"))


@dataclass(slots=True)
class _Visit:
    """The mutable state of one ongoing visit; attributes come from its first event."""

    first: Event
    visit_id: int
    start_ms: int
    end_ms: int
    pageviews: int = 0
    events: int = 0
    interactive_events: int = 0
    engaged_ms: int = 0
    exit_page: str = ""
    version: int = 0
    attributes: tuple[str, ...] = ()  # the first event's and the channel, fixed for the visit
    last_row: VisitRow | None = None  # the +1 row written last, to cancel on update

    @property
    def duration_seconds(self) -> int:
        # The tracker's engagement time is better than the gap between hits when it is longer.
        return max(self.end_ms - self.start_ms, self.engaged_ms) // 1000

    @property
    def is_bounce(self) -> int:
        return int(self.pageviews == 1 and self.interactive_events == 0)

    def row(self) -> VisitRow:
        """The visit's current state, as a +1 row."""
        first = self.first
        if not self.attributes:
            copied = _first_event_attributes(first)
            channel = channel_of(first.referrer_source, first.referrer_medium,
                                 first.utm_source, first.utm_medium, first.utm_campaign)
            self.attributes = (*copied[:_CHANNEL_AT], channel, *copied[_CHANNEL_AT:])
        return VisitRow._make((  # in the order of _STATE, checked above
            first.site, first.visitor, self.visit_id, self.start_ms, self.duration_seconds,
            self.pageviews, self.events, self.interactive_events, self.is_bounce,
            self.engaged_ms, first.pathname, self.exit_page or first.pathname,
            *self.attributes, 1, self.version))

    def cancelling_row(self) -> VisitRow:
        """The row that cancels the last +1 row (same state and version, sign -1)."""
        assert self.last_row is not None
        return self.last_row._replace(sign=-1)

    def absorb(self, event: Event) -> None:
        self.end_ms = max(self.end_ms, event.timestamp_ms)
        if event.name == ENGAGEMENT:
            self.engaged_ms += event.engaged_ms
            return
        self.events += 1
        if event.name == PAGEVIEW:
            self.pageviews += 1
            self.exit_page = event.pathname
        elif event.interactive:
            self.interactive_events += 1


def visit_id_of(site: str, visitor: int, start_ms: int) -> int:
    """A stable UInt64 id: the same on every collector that sees the same first event."""
    digest = hashlib.blake2b(f"{site}\0{visitor}\0{start_ms}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class VisitTracker:
    """Assigns events to visits and produces the collapsing rows of the ``visits`` table."""

    def __init__(self, timeout_ms: int = VISIT_TIMEOUT_MS,
                 max_visits: int = DEFAULT_MAX_VISITS) -> None:
        self._timeout_ms = timeout_ms
        self._max_visits = max_visits
        self._visits: OrderedDict[tuple[str, int], _Visit] = OrderedDict()

    def __len__(self) -> int:
        return len(self._visits)

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
        cancelled = current.cancelling_row()
        current.absorb(event)
        current.version += 1
        current.last_row = current.row()
        self._visits.move_to_end(key)
        return event._replace(visit=current.visit_id), [cancelled, current.last_row]

    def _start(self, key: tuple[str, int], event: Event) -> tuple[Event, list[VisitRow]]:
        visit_id = visit_id_of(event.site, event.visitor, event.timestamp_ms)
        visit = _Visit(first=event, visit_id=visit_id, start_ms=event.timestamp_ms,
                       end_ms=event.timestamp_ms)
        visit.absorb(event)
        self._visits[key] = visit
        self._visits.move_to_end(key)
        self._evict(event.timestamp_ms)
        visit.last_row = visit.row()
        return event._replace(visit=visit_id), [visit.last_row]

    def _evict(self, now_ms: int) -> None:
        """Drop visits that timed out, and the least recent ones beyond the bound."""
        while self._visits:
            key, oldest = next(iter(self._visits.items()))
            expired = now_ms - oldest.end_ms >= self._timeout_ms
            if not expired and len(self._visits) <= self._max_visits:
                return
            del self._visits[key]

"""Recording a hit: the pipeline's events, their visits, and the rows handed to the writer.

This is the step between the HTTP views (which only read requests and write
answers) and storage: it knows that an event belongs to a visit and which
tables the rows go to, so the views do not.
"""

from __future__ import annotations

from collections.abc import Mapping

from collector.drops import DropCounter
from collector.event import Event, VisitRow
from collector.ingest import IncomingEvent
from collector.pipeline import Dropped, Pipeline
from collector.visits import VisitTracker
from collector.writer import Writer

# What a request's rows are counted as in the writer's size limit when it has no body
# (the pixel): about one event row.
ROW_SIZE_ESTIMATE = 256


class Recorder:
    def __init__(self, pipeline: Pipeline, visits: VisitTracker, writer: Writer,
                 drops: DropCounter) -> None:
        self.pipeline = pipeline
        self.visits = visits
        self.writer = writer
        self.drops = drops

    def record(self, incoming: IncomingEvent, peer: str | None, headers: Mapping[str, str],
               size: int = 0, staged: bool = False) -> Dropped | None:
        """Buffer the request's events and visit rows; why not, when it is dropped (and
        counted: ``collector.drops``).

        Raises ``OverloadedError`` (nothing of the request kept) when the buffer is full.
        On return the rows are in the writer's write-ahead log: the request may be answered
        (with ``staged``, once ``Writer.commit`` returns).
        """
        outcome = self.pipeline.process(incoming, peer, headers)
        if isinstance(outcome, Dropped):
            self.drops.count(incoming.domains, outcome.reason)
            return outcome
        # Refused before the visits advance: a 503'd event must leave no visit state
        # whose next update would cancel a row never stored. An event makes its own row
        # and its visit's new state, and cancels the old one when it continues a visit.
        self.writer.ensure_room(sum(2 + self.visits.is_active(event.site, event.visitor,
                                                              event.timestamp_ms)
                                    for event in outcome))
        events: list[Event] = []
        visit_rows: list[VisitRow] = []
        for event in outcome:
            tracked, rows = self.visits.track(event)
            events.append(tracked)
            visit_rows.extend(rows)
        self.writer.add({"events": events, "visits": visit_rows},
                        size or ROW_SIZE_ESTIMATE * len(events), staged)
        return None

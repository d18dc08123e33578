"""What ingest deliberately did not record, counted per configured site, UTC hour and reason.

A dropped request adds one to ``(site, hour, reason)`` for every configured site it
named: a dict increment under a lock, because bot traffic makes this path hot. The
counts go to the writer as rows of the ``drops`` table (``collector.writer``: batched,
spooled while the store is down, replayed once), at every ``COLLECTOR_FLUSH_INTERVAL``
(a ``collector.maintenance`` duty) and at shutdown before the writer stops. When the
writer's buffer is full they stay here for the next turn: a dropped request is never
answered 503.

Promise: a count is all that is kept of a dropped request — no page, referrer, agent or
address. Domains nobody configured are never counted (``unknown-site``, and every
domain in dev mode), so a stranger cannot fill the table with names of their choosing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from collector.errors import OverloadedError
from collector.sites import SiteRegistry
from collector.writer import Writer

logger = logging.getLogger("collector")

DROPS_TABLE = "drops"
DROPS_COLUMNS = ("site", "hour", "reason", "count")
# The reasons counted, in the order reports list them; unknown-site is not one of them.
REASONS = ("bot", "spam", "opt-out", "excluded", "prefetch")
_COUNTED = frozenset(REASONS)
HOUR_SECONDS = 3600
# What one drops row is counted as in the writer's size limit.
_ROW_SIZE_ESTIMATE = 48

Key = tuple[str, int, str]  # (site, start of the UTC hour in epoch seconds, reason)


class DropCounter:
    """Counts in memory, handed to ``writer`` by ``flush``."""

    def __init__(self, sites: SiteRegistry, writer: Writer,
                 clock: Callable[[], float] = time.time) -> None:
        self._sites = sites
        self._writer = writer
        self._clock = clock
        self._counts: dict[Key, int] = {}
        self._lock = threading.Lock()

    def count(self, domains: Sequence[str], reason: str) -> None:
        """One more request dropped for ``reason``, for each configured site in ``domains``."""
        # In dev mode every domain passes for a site: none of them is configured.
        if reason not in _COUNTED or self._sites.open_to_all:
            return
        hour = int(self._clock()) // HOUR_SECONDS * HOUR_SECONDS
        with self._lock:
            counts = self._counts
            for domain in domains:
                if self._sites.get(domain) is not None:
                    key = (domain, hour, reason)
                    counts[key] = counts.get(key, 0) + 1

    @property
    def pending(self) -> dict[Key, int]:
        """A copy of the counts not yet handed to the writer."""
        with self._lock:
            return dict(self._counts)

    def flush(self) -> bool:
        """Hand the counts to the writer; False (they are kept) when its buffer is full."""
        # Under the lock throughout: a flush racing the shutdown's must not lose the counts
        # it took. It is brief (a few rows), and requests wait only for that.
        with self._lock:
            if not self._counts:
                return True
            rows = [(site, hour, reason, count)
                    for (site, hour, reason), count in self._counts.items()]
            try:
                self._writer.add({DROPS_TABLE: rows}, _ROW_SIZE_ESTIMATE * len(rows))
            except OverloadedError:
                return False
            self._counts.clear()
            return True

    def stop(self) -> None:
        """The last flush, before the writer stops; says what it could not hand over."""
        if not self.flush():
            logger.error("shutdown: %d drop counts could not be written: the write buffer "
                         "is full", len(self.pending))

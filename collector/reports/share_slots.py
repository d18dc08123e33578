"""How many reports one share link may run at once.

Reports run on a few connections of their own (``collector.app.REPORT_CONNECTIONS``). A
share link is public: without a bound, whoever holds one could keep every report
connection busy with slow questions, and the site owner's own dashboard would wait
behind them. So each link runs at most ``SHARE_REPORTS_AT_ONCE`` reports at a time;
one more is a 429 with ``Retry-After``. Key holders and dashboard sessions are the
site's owners and are not limited here.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from collector.errors import TooManyRequests

# Half the report connections: two links asking at once still leave nothing waiting
# on each other for long, and one link never holds them all.
SHARE_REPORTS_AT_ONCE = 2


class ShareSlots:
    """Counts the reports each share link has running (reports run on worker threads)."""

    def __init__(self, at_once: int = SHARE_REPORTS_AT_ONCE) -> None:
        self._at_once = at_once
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, key_id: str) -> Iterator[None]:
        """Hold one of ``key_id``'s slots for the block; TooManyRequests when none is free."""
        with self._lock:
            if self._running[key_id] >= self._at_once:
                raise TooManyRequests(f"this share link already runs {self._at_once} reports; "
                                      "retry once one has answered", retry_after=1)
            self._running[key_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[key_id] -= 1
                if not self._running[key_id]:
                    del self._running[key_id]

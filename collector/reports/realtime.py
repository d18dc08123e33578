"""Realtime visitors: distinct visitors of a site in the last few minutes.

Key holders get the exact count of the ``REALTIME_SECONDS`` up to now. A share token
gets the count of the last whole window of that length (windows start at multiples of
``REALTIME_SECONDS`` since the epoch): suppressed (``None``) under the public k, noised
otherwise, and paid for once per window, however often it is asked for within it.
"""

from __future__ import annotations

from datetime import datetime

from collector.reports.dimensions import moment_sql
from collector.reports.release import Releaser, Table
from collector.storage import Store

REALTIME_SECONDS = 5 * 60


def realtime_visitors(store: Store, site: str, now: datetime,
                      releaser: Releaser | None = None) -> int | None:
    """Visitors with an event other than engagement in the ``REALTIME_SECONDS`` up to ``now``
    (for ``releaser``'s share token: in the last whole window, released)."""
    if releaser is None:
        # Up to the end of the current second: event times have milliseconds, and an event
        # of this very second is current.
        until = int(now.timestamp()) + 1
        return _visitors(store, site, until - REALTIME_SECONDS, until, "uniq")
    until = int(now.timestamp()) // REALTIME_SECONDS * REALTIME_SECONDS
    since = until - REALTIME_SECONDS
    # A visitor counts once in the window: the count's sensitivity is 1.
    exact = _visitors(store, site, since, until, "uniqExact")
    published = releaser.publish({"report": "realtime", "site": site, "window": [since, until]},
                                 [Table("visitors", [((), {"visitors": exact})], ("visitors",),
                                        1)])
    released = published.row("visitors", ())
    return None if released is None else int(released["visitors"])


def _visitors(store: Store, site: str, since: int, until: int, count: str) -> int:
    rows = store.rows(
        f"SELECT {count}(visitor) FROM events WHERE site = {{site:String}} "
        f"AND timestamp >= {moment_sql('timestamp', '{since:UInt32}')} "
        f"AND timestamp < {moment_sql('timestamp', '{until:UInt32}')} AND name != 'engagement'",
        {"site": site, "since": since, "until": until})
    return int(rows[0][0])

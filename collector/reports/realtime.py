"""Realtime visitors: distinct visitors of a site in the last few minutes."""

from __future__ import annotations

from datetime import datetime

from collector.reports.dimensions import moment_sql
from collector.storage import Store

REALTIME_SECONDS = 5 * 60


def realtime_visitors(store: Store, site: str, now: datetime) -> int:
    """Visitors with an event other than engagement in the ``REALTIME_SECONDS`` up to ``now``."""
    # Up to the end of the current second: event times have milliseconds, and an event
    # of this very second is current.
    until = int(now.timestamp()) + 1
    rows = store.rows(
        "SELECT uniq(visitor) FROM events WHERE site = {site:String} "
        f"AND timestamp >= {moment_sql('timestamp', '{since:UInt32}')} "
        f"AND timestamp < {moment_sql('timestamp', '{until:UInt32}')} AND name != 'engagement'",
        {"site": site, "since": until - REALTIME_SECONDS, "until": until})
    return int(rows[0][0])

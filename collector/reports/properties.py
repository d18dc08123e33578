"""Which custom-event property keys a site's events carry in a period.

The dashboard lists them so an analyst can pick one for the ``event:props:<key>``
breakdown. A key seen by fewer than k visitors is left out, exactly as a rare
row is folded in a breakdown: its name alone could single someone out.
"""

from __future__ import annotations

from typing import Any

from collector.reports.builder import SiteContext
from collector.reports.dates import DateRange
from collector.reports.dimensions import moment_sql
from collector.storage import Store

MAX_KEYS = 100


def property_keys(store: Store, context: SiteContext, period: DateRange) -> list[dict[str, Any]]:
    """``[{"key": ..., "visitors": n}, ...]``, most visitors first, at most ``MAX_KEYS``."""
    rows = store.rows(
        "SELECT key, uniqExact(visitor) AS visitors FROM events ARRAY JOIN prop_keys AS key "
        "WHERE site = {site:String} "
        f"AND timestamp >= {moment_sql('timestamp', '{start:UInt32}')} "
        f"AND timestamp < {moment_sql('timestamp', '{end:UInt32}')} AND name != 'engagement' "
        "GROUP BY key HAVING visitors >= {k:UInt32} ORDER BY visitors DESC, key "
        "LIMIT {limit:UInt32}",
        {"site": context.site, "start": int(period.start.timestamp()),
         "end": int(period.end.timestamp()), "k": max(1, context.k), "limit": MAX_KEYS})
    return [{"key": key, "visitors": int(visitors)} for key, visitors in rows]

"""Which custom-event property keys a site's events carry in a period.

The dashboard lists them so an analyst can pick one for the ``event:props:<key>``
breakdown. A key seen by fewer than k visitors is left out, exactly as a rare
row is folded in a breakdown: its name alone could single someone out. A share
token's visitors per key are released (``collector.reports.release``): each visitor
counted in at most ``rows`` keys, noised, ordered by the noisy counts.
"""

from __future__ import annotations

from typing import Any

from collector.reports.builder import SiteContext
from collector.reports.contribution import VISITOR
from collector.reports.dates import DateRange
from collector.reports.dimensions import moment_sql
from collector.reports.release import Releaser, Table
from collector.storage import Store

MAX_KEYS = 100
# A share token's keys are ranked after the noise: read this many, keep MAX_KEYS.
MAX_SHARE_KEYS = 1000
_WHERE = ("FROM events ARRAY JOIN prop_keys AS key WHERE site = {site:String} "
          f"AND timestamp >= {moment_sql('timestamp', '{start:UInt32}')} "
          f"AND timestamp < {moment_sql('timestamp', '{end:UInt32}')} AND name != 'engagement'")


def property_keys(store: Store, context: SiteContext, period: DateRange,
                  releaser: Releaser | None = None) -> dict[str, Any]:
    """``{"results": [{"key": ..., "visitors": n}, ...], "meta": {...}}``, most visitors
    first, at most ``MAX_KEYS``."""
    if releaser is not None:
        return _released(store, context, period, releaser)
    rows = store.rows(
        f"SELECT key, uniqExact(visitor) AS visitors {_WHERE} "
        "GROUP BY key HAVING visitors >= {k:UInt32} ORDER BY visitors DESC, key "
        "LIMIT {limit:UInt32}", _parameters(context, period, MAX_KEYS))
    return {"results": [{"key": key, "visitors": int(visitors)} for key, visitors in rows],
            "meta": {}}


def _released(store: Store, context: SiteContext, period: DateRange,
              releaser: Releaser) -> dict[str, Any]:
    bounds = releaser.bounds
    rows = store.rows(
        f"SELECT key, count() AS visitors FROM (SELECT key, visitor AS {VISITOR} {_WHERE} "
        f"GROUP BY key, {VISITOR} ORDER BY {VISITOR}, cityHash64({VISITOR}, key) "
        f"LIMIT {int(bounds.rows)} BY {VISITOR}) GROUP BY key HAVING visitors >= {{k:UInt32}} "
        "ORDER BY visitors DESC, key LIMIT {limit:UInt32}",
        _parameters(context, period, MAX_SHARE_KEYS))
    exact = [((key,), {"visitors": float(visitors)}) for key, visitors in rows]
    published = releaser.publish(
        {"report": "properties", "site": context.site,
         "period": [period.start.isoformat(), period.end.isoformat()]},
        [Table("keys", exact, ("visitors",), bounds.rows)])
    released = []
    for (key,), _ in exact:
        noisy = published.row("keys", (key,))
        if noisy is not None:
            released.append({"key": key, "visitors": int(noisy["visitors"])})
    released.sort(key=lambda row: (-row["visitors"], row["key"]))
    return {"results": released[:MAX_KEYS], "meta": {"privacy": releaser.meta(published)}}


def _parameters(context: SiteContext, period: DateRange, limit: int) -> dict[str, Any]:
    return {"site": context.site, "start": int(period.start.timestamp()),
            "end": int(period.end.timestamp()), "k": max(1, context.k), "limit": limit}

"""k-threshold folding: breakdown rows seen by fewer than k visitors become ``(other)``.

Folding happens in SQL, before ordering and pagination, so a rare page or
referrer never leaves the database under its own name. k is per site: one value
for API-key holders (default 1, nothing folded) and a stricter one for public
share tokens (default 5).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from collector.errors import InvalidField
from collector.reports.auth import SHARE
from collector.storage import Store

OTHER = "(other)"
DEFAULT_K = 1
DEFAULT_PUBLIC_K = 5


@dataclass(frozen=True)
class Thresholds:
    k: int = DEFAULT_K
    public_k: int = DEFAULT_PUBLIC_K

    def for_kind(self, kind: str) -> int:
        return self.public_k if kind == SHARE else self.k


def thresholds(store: Store, site: str) -> Thresholds:
    rows = store.rows("SELECT k, public_k FROM report_settings FINAL WHERE site = {site:String}",
                      {"site": site})
    return Thresholds(*rows[0]) if rows else Thresholds()


def set_thresholds(store: Store, site: str, k: int, public_k: int) -> Thresholds:
    for name, value in (("k", k), ("public_k", public_k)):
        if not 1 <= value <= 1000:
            raise InvalidField("must be from 1 to 1000", name)
    store.command(
        "INSERT INTO report_settings (site, k, public_k, version) VALUES "
        "({site:String}, {k:UInt32}, {public_k:UInt32}, {version:UInt64})",
        {"site": site, "k": k, "public_k": public_k, "version": time.time_ns()})
    return Thresholds(k, public_k)


def folded_sql(inner: str, dimension_aliases: list[str], time_alias: str | None,
               component_aliases: list[str], k_placeholder: str) -> str:
    """Wrap a grouped query so that rows under k visitors merge into one ``(other)`` row.

    The inner query names its columns ``inner_<alias>``; the result keeps the plain
    aliases. Time buckets are kept: only the named dimensions (pages, sources...)
    could single someone out. Visitors of ``(other)`` are summed, an upper bound.
    """
    # Promise: rare paths or referrers are released only in the aggregate, never by name.
    folded = [f"if(inner_c_visitors >= {k_placeholder}, inner_{alias}, '{OTHER}') AS {alias}"
              for alias in dimension_aliases]
    kept = [f"inner_{time_alias} AS {time_alias}"] if time_alias else []
    sums = [f"sum(inner_{alias}) AS {alias}" for alias in component_aliases]
    keys = [time_alias] if time_alias else []
    return (f"SELECT {', '.join(kept + folded + sums)} FROM ({inner}) AS grouped "
            f"GROUP BY {', '.join([*keys, *dimension_aliases])}")

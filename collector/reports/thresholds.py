"""A site's report privacy settings, and k-threshold folding.

Breakdown rows seen by fewer than k visitors become ``(other)``. Folding happens
in SQL, before ordering and pagination, so a rare page or referrer never leaves
the database under its own name. k is per site: one value for API-key holders
(default 1, nothing folded) and a stricter one for public share tokens (default
5). Share tokens also get noisy answers (``collector.reports.release``): each
answer spends ``epsilon`` of the token's ``epsilon_day`` for the UTC day.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

from collector.errors import InvalidField
from collector.reports.auth import SHARE
from collector.storage import Store

OTHER = "(other)"
DEFAULT_K = 1
DEFAULT_PUBLIC_K = 5
# Migration 0009's column defaults: a site never configured answers with these.
DEFAULT_EPSILON = 1.0
DEFAULT_EPSILON_DAY = 30.0
MAX_EPSILON = 10.0
MAX_EPSILON_DAY = 1000.0


@dataclass(frozen=True)
class Thresholds:
    k: int = DEFAULT_K
    public_k: int = DEFAULT_PUBLIC_K
    epsilon: float = DEFAULT_EPSILON  # spent by each answer to a share token
    epsilon_day: float = DEFAULT_EPSILON_DAY  # what one share token may spend per UTC day

    def for_kind(self, kind: str) -> int:
        return self.public_k if kind == SHARE else self.k


def thresholds(store: Store, site: str) -> Thresholds:
    rows = store.rows("SELECT k, public_k, share_epsilon, share_epsilon_day FROM "
                      "report_settings FINAL WHERE site = {site:String}", {"site": site})
    return Thresholds(*rows[0]) if rows else Thresholds()


def set_thresholds(store: Store, site: str, k: int, public_k: int) -> Thresholds:
    for name, value in (("k", k), ("public_k", public_k)):
        if not 1 <= value <= 1000:
            raise InvalidField("must be from 1 to 1000", name)
    return _save(store, site, dataclasses.replace(thresholds(store, site), k=k,
                                                  public_k=public_k))


def set_share_budget(store: Store, site: str, epsilon: float, epsilon_day: float) -> Thresholds:
    """Set what each answer to a share token spends and what a token may spend per day."""
    if not 0 < epsilon <= MAX_EPSILON:
        raise InvalidField(f"the epsilon of an answer must be above 0 and at most "
                           f"{MAX_EPSILON:g}", "epsilon")
    if not epsilon <= epsilon_day <= MAX_EPSILON_DAY:
        raise InvalidField(f"the daily epsilon must be from the epsilon of an answer "
                           f"({epsilon:g}) to {MAX_EPSILON_DAY:g}", "epsilon_day")
    return _save(store, site, dataclasses.replace(thresholds(store, site), epsilon=epsilon,
                                                  epsilon_day=epsilon_day))


def _save(store: Store, site: str, settings: Thresholds) -> Thresholds:
    # One row carries every setting: a row written with only some would reset the others.
    store.command(
        "INSERT INTO report_settings (site, k, public_k, share_epsilon, share_epsilon_day, "
        "version) VALUES ({site:String}, {k:UInt32}, {public_k:UInt32}, {epsilon:Float64}, "
        "{epsilon_day:Float64}, {version:UInt64})",
        {"site": site, "k": settings.k, "public_k": settings.public_k,
         "epsilon": settings.epsilon, "epsilon_day": settings.epsilon_day,
         "version": time.time_ns()})
    return settings


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

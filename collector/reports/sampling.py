"""When a report reads a sample of the stored rows instead of all of them.

Two choices, both by the size of the range asked about: visitors come exactly
from the raw tables on small ranges and from a 1/16 or 1/256 visitor sample on
large ones (the rollups hold only those samples); raw queries over very many
rows read a ``SAMPLE`` of them, every metric scaled back up. The sizes cost a
query each, so a ``Sampler`` remembers them briefly: a dashboard asks about one
range a dozen times. Each app owns its own ``Sampler`` (``reports.service``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from collector.reports.dates import DateRange
from collector.reports.dimensions import moment_sql
from collector.schema import TIME_COLUMNS
from collector.storage import Store

# Sizes of a range (its visits, its raw rows) that pick the samples, kept this long.
REMEMBER_SECONDS = 60.0
REMEMBER_AT_MOST = 1000


@dataclass(frozen=True)
class SamplingPolicy:
    """The sizes at which reports switch from every row to a sample."""

    # Raw queries over more rows than this read a sample, scaled back up.
    sample_above_rows: int = 20_000_000
    # Visitors: exact up to this many visits in the range, then a 1/16 sample, then
    # 1/256 above the second bound (about 100k-300k visitors counted).
    exact_visitors_up_to_visits: int = 300_000
    sixteenth_up_to_visits: int = 5_000_000


DEFAULT_SAMPLING = SamplingPolicy()


class Sampler:
    """Applies a ``SamplingPolicy``, remembering each range's size for ``REMEMBER_SECONDS``."""

    def __init__(self, policy: SamplingPolicy = DEFAULT_SAMPLING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._remembered: dict[tuple[object, ...], tuple[int, float]] = {}
        self._lock = threading.Lock()

    def visitor_sample(self, store: Store, site: str, period: DateRange) -> int:
        """1, 16 or 256 by the visits in the range."""
        visits = self._remembered_size(
            (store.database, "visits in range", site, period.start, period.end),
            lambda: _count_visits(store, site, period))
        if visits <= self.policy.exact_visitors_up_to_visits:
            return 1
        return 16 if visits <= self.policy.sixteenth_up_to_visits else 256

    def row_sample(self, store: Store, table: str, site: str, period: DateRange) -> float | None:
        """The SAMPLE ratio a raw query on ``table`` should read, or None for every row."""
        rows = self._remembered_size((store.database, table, site, period.start, period.end),
                                     lambda: _count_rows(store, table, site, period))
        limit = self.policy.sample_above_rows
        return None if rows <= limit else max(0.01, round(limit / rows, 2))

    def _remembered_size(self, key: tuple[object, ...], count: Callable[[], int]) -> int:
        now = self._clock()
        with self._lock:
            remembered = self._remembered.get(key)
        # A clock that went back makes the entry stale too, never everlasting.
        if remembered is not None and 0 <= now - remembered[1] < REMEMBER_SECONDS:
            return remembered[0]
        size = count()
        with self._lock:
            if len(self._remembered) >= REMEMBER_AT_MOST:
                self._remembered.clear()
            self._remembered[key] = (size, now)
        return size


def _count_visits(store: Store, site: str, period: DateRange) -> int:
    return int(store.rows(
        "SELECT sum(visits) FROM visits_rollup WHERE site = {site:String} AND dimension = '' "
        "AND hour >= toDateTime({start:UInt32}, 'UTC') AND hour < toDateTime({end:UInt32}, 'UTC')",
        _range_parameters(site, period))[0][0])


def _count_rows(store: Store, table: str, site: str, period: DateRange) -> int:
    column = TIME_COLUMNS[table]
    return int(store.rows(
        f"SELECT count() FROM {table} WHERE site = {{site:String}} "
        f"AND {column} >= {moment_sql(column, '{start:UInt32}')} "
        f"AND {column} < {moment_sql(column, '{end:UInt32}')}",
        _range_parameters(site, period))[0][0])


def _range_parameters(site: str, period: DateRange) -> dict[str, object]:
    return {"site": site, "start": int(period.start.timestamp()),
            "end": int(period.end.timestamp())}

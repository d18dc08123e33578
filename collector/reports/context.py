"""What a report needs to know about its site, cached briefly by each app.

Reading a site's timezone, goals and thresholds costs three small queries
(about 5 ms), on every request of a dashboard that fires ten at once. They
change only through the admin commands, which run in another process: a change
applies within ``CONTEXT_SECONDS``, or at once after ``SiteContexts.forget``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from collector.reports.builder import SiteContext
from collector.reports.goals import Goal, list_goals
from collector.reports.thresholds import Thresholds, thresholds
from collector.sites import list_sites
from collector.storage import Store

CONTEXT_SECONDS = 10.0


@dataclass(frozen=True)
class SiteSettings:
    """A site's stored report settings, whoever asks."""

    timezone: str
    goals: tuple[Goal, ...]
    thresholds: Thresholds


def load_site_settings(store: Store, site: str) -> SiteSettings:
    """The stored settings of ``site``; a site not stored reports in UTC."""
    stored = list_sites(store, site)
    return SiteSettings(stored[0].timezone if stored else "UTC",
                        tuple(list_goals(store, site)), thresholds(store, site))


class SiteContexts:
    """Each site's settings, reused for ``CONTEXT_SECONDS`` of ``clock``."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._cache: dict[str, tuple[float, SiteSettings]] = {}  # site: (loaded at, settings)
        self._generation = 0
        self._lock = threading.Lock()

    def for_site(self, site: str, grant_kind: str) -> SiteContext:
        """The site's timezone, goals and the k-threshold that applies to this caller."""
        settings = self.settings(site)
        return SiteContext(site, settings.timezone, settings.goals,
                           settings.thresholds.for_kind(grant_kind))

    def forget(self) -> None:
        """Forget every cached answer: the next report reads its site's settings again."""
        with self._lock:
            self._generation += 1
            self._cache.clear()

    def settings(self, site: str) -> SiteSettings:
        """The site's settings, as last read (at most ``CONTEXT_SECONDS`` ago)."""
        now = self._clock()
        with self._lock:
            generation = self._generation
            entry = self._cache.get(site)
        # A clock that went back makes the entry stale too, never everlasting.
        if entry is not None and 0 <= now - entry[0] < CONTEXT_SECONDS:
            return entry[1]
        settings = load_site_settings(self._store, site)
        with self._lock:
            if generation == self._generation:  # a forget() meanwhile wins over this read
                self._cache[site] = (now, settings)
        return settings

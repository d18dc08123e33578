"""What the report endpoints share for an app's lifetime: a store, a clock and the caches.

Built once at startup (``collector.app``) and kept on ``app.state.reports``, so
two apps in one process never share a cache, and the clock handed to
``create_app`` decides what "today" and "the last five minutes" mean.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from collector.reports.auth import SHARE
from collector.reports.context import SiteContexts
from collector.reports.drops_report import DropsReport, DropsSpec, run_drops_report
from collector.reports.properties import property_keys
from collector.reports.query import Report, period_of, run_report
from collector.reports.realtime import realtime_visitors
from collector.reports.request import QuerySpec
from collector.reports.sampling import DEFAULT_SAMPLING, Sampler, SamplingPolicy
from collector.storage import Store


class Reports:
    """Runs reports on ``store`` as of ``clock``, with this app's own caches."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 sampling: SamplingPolicy = DEFAULT_SAMPLING) -> None:
        self.store = store
        self._clock = clock
        self.site_contexts = SiteContexts(store, clock)
        self.sampler = Sampler(sampling, clock)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def run(self, spec: QuerySpec, grant_kind: str) -> Report:
        """The report ``spec`` asks for, with the k-threshold of ``grant_kind``."""
        context = self.site_contexts.for_site(spec.site_id, grant_kind)
        return run_report(self.store, spec, context, self.now(), sampler=self.sampler)

    def property_keys(self, spec: QuerySpec, grant_kind: str) -> list[dict[str, Any]]:
        """The custom property keys of ``spec``'s site and period, rare ones left out."""
        context = self.site_contexts.for_site(spec.site_id, grant_kind)
        return property_keys(self.store, context,
                             period_of(self.store, spec, context, self.now()))

    def realtime_visitors(self, site: str) -> int:
        return realtime_visitors(self.store, site, self.now())

    def drops(self, spec: DropsSpec, grant_kind: str) -> DropsReport:
        """What was filtered out; share links see small counts as null (public k)."""
        context = self.site_contexts.for_site(spec.site_id, grant_kind)
        return run_drops_report(self.store, spec, context, self.now(),
                                suppress_below=context.k if grant_kind == SHARE else 1)

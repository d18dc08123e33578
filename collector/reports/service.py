"""What the report endpoints share for an app's lifetime: a store, a clock and the caches.

Built once at startup (``collector.app``) and kept on ``app.state.reports``, so
two apps in one process never share a cache, and the clock handed to
``create_app`` decides what "today" and "the last five minutes" mean.

A caller is a checked token's ``Grant``, or just its kind (``api``/``share``). Key
holders get exact numbers. Share tokens get released ones (``collector.reports.release``:
suppressed under the public k, noised, paid for from the token's daily budget); a share
caller known only by its kind spends from one budget for the whole site, its
``share:<site>`` pool, so that no share answer is ever given without one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from collector.reports.auth import SHARE, Grant
from collector.reports.budget import PrivacyBudget
from collector.reports.context import SiteContexts
from collector.reports.drops_report import DropsReport, DropsSpec, run_drops_report
from collector.reports.noise_key import NoiseKey
from collector.reports.properties import property_keys
from collector.reports.query import Report, period_of, run_report
from collector.reports.realtime import realtime_visitors
from collector.reports.release import ReleaseCache, Releaser, ShareAccess
from collector.reports.request import QuerySpec
from collector.reports.sampling import DEFAULT_SAMPLING, Sampler, SamplingPolicy
from collector.reports.share_slots import ShareSlots
from collector.storage import Store

Caller = Grant | str


class Reports:
    """Runs reports on ``store`` as of ``clock``, with this app's own caches."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time,
                 sampling: SamplingPolicy = DEFAULT_SAMPLING) -> None:
        self.store = store
        self._clock = clock
        self.site_contexts = SiteContexts(store, clock)
        self.sampler = Sampler(sampling, clock)
        self.budget = PrivacyBudget(store, clock)
        self.releases = ReleaseCache(clock)
        self._noise_key = NoiseKey(store)
        self.share_slots = ShareSlots()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def run(self, spec: QuerySpec, caller: Caller) -> Report:
        """The report ``spec`` asks for, with the k-threshold (and privacy) of ``caller``."""
        kind = _kind(caller)
        context = self.site_contexts.for_site(spec.site_id, kind)
        return run_report(self.store, spec, context, self.now(), sampler=self.sampler,
                          releaser=self.releaser(spec.site_id, caller))

    def property_keys(self, spec: QuerySpec, caller: Caller) -> dict[str, Any]:
        """The custom property keys of ``spec``'s site and period, rare ones left out."""
        context = self.site_contexts.for_site(spec.site_id, _kind(caller))
        return property_keys(self.store, context,
                             period_of(self.store, spec, context, self.now()),
                             self.releaser(spec.site_id, caller))

    def realtime_visitors(self, site: str, caller: Caller = "api") -> int | None:
        return realtime_visitors(self.store, site, self.now(), self.releaser(site, caller))

    def drops(self, spec: DropsSpec, caller: Caller) -> DropsReport:
        """What was filtered out; share links see small counts as null (public k), noised."""
        context = self.site_contexts.for_site(spec.site_id, _kind(caller))
        return run_drops_report(self.store, spec, context, self.now(),
                                releaser=self.releaser(spec.site_id, caller))

    def releaser(self, site: str, caller: Caller) -> Releaser | None:
        """What releases a share caller's answers; None for a key holder's exact ones."""
        if _kind(caller) != SHARE:
            return None
        settings = self.site_contexts.settings(site).thresholds
        key_id = caller.key_id if isinstance(caller, Grant) else f"share:{site}"
        access = ShareAccess(key_id, settings.public_k, settings.epsilon, settings.epsilon_day)
        return Releaser(access, self._noise_key.secret(), self.budget, self.releases)


def _kind(caller: Caller) -> str:
    return caller.kind if isinstance(caller, Grant) else caller

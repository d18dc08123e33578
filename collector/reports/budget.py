"""Each share token's privacy budget: what its answers spent on a UTC day, in the store.

An answer to a share token is a *release* (``collector.reports.release``), named by a
digest of the token, the normalised question and the exact data it answered. A release
already recorded for the token (on any day) is the same answer again, deterministic
noise included: it is given for free. A new one spends its epsilon, unless the token's
spending of the day would go above the site's ``epsilon_day``: then it is refused with
429 and ``Retry-After`` the seconds until the next UTC midnight.

Spending is written to ``privacy_spends`` before the answer leaves and checked after
the write: whatever several collectors (or threads) spend at once, an answer is given
only when the day's total, its own spending and every concurrent one included, stays
within the budget. A refused answer's spending stays recorded (the budget errs on the
side of the visitors). With a replicated ClickHouse the check reads what the replica
it asks has received: the bound holds up to the replication lag (docs/privacy.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from collector.errors import TooManyRequests
from collector.storage import Store

# Epsilons are floats: sums of settings such as 0.1 are off by rounding, never by more.
TOLERANCE = 1e-9


@dataclass(frozen=True)
class Spending:
    """What one answer cost its token, and what the token has left today."""

    epsilon: float  # spent by this answer: 0 when it was given before
    spent_today: float
    epsilon_day: float
    repeated: bool
    refills_at: datetime  # the next UTC midnight

    @property
    def remaining(self) -> float:
        return max(0.0, round(self.epsilon_day - self.spent_today, 9))


class PrivacyBudget:
    """Share tokens' spending, read from and written to ``privacy_spends``."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()  # one spending at a time here; the store orders the rest

    def spend(self, key_id: str, release: str, epsilon: float, epsilon_day: float) -> Spending:
        """Pay ``epsilon`` for ``release`` (nothing if it was paid before); TooManyRequests,
        until the next UTC midnight, when the day's budget cannot pay for it."""
        now = self._now()
        today, refills_at = now.date(), _next_midnight(now)
        with self._lock:
            if self._released(key_id, release):
                return Spending(0.0, self.spent_on(key_id, today), epsilon_day, True, refills_at)
            if self.spent_on(key_id, today) + epsilon > epsilon_day + TOLERANCE:
                raise self._refusal(epsilon_day, refills_at, now)
            self._store.command(
                "INSERT INTO privacy_spends (key_id, day, release, epsilon, at_ms) VALUES "
                "({key_id:String}, {day:Date}, {release:String}, {epsilon:Float64}, "
                "{at:UInt64})",
                {"key_id": key_id, "day": today, "release": release, "epsilon": epsilon,
                 "at": int(now.timestamp() * 1000)})
            spent = self.spent_on(key_id, today)
        if spent > epsilon_day + TOLERANCE:  # others spent meanwhile: the total decides
            raise self._refusal(epsilon_day, refills_at, now)
        return Spending(epsilon, spent, epsilon_day, False, refills_at)

    def spent_on(self, key_id: str, day: date) -> float:
        """The token's spending on ``day``: each release counted once, however often written."""
        rows = self._store.rows(
            "SELECT sum(epsilon) FROM (SELECT release, max(epsilon) AS epsilon FROM "
            "privacy_spends WHERE key_id = {key_id:String} AND day = {day:Date} "
            "GROUP BY release)", {"key_id": key_id, "day": day})
        return float(rows[0][0]) if rows and rows[0][0] is not None else 0.0

    def spent_today(self, key_id: str) -> float:
        return self.spent_on(key_id, self._now().date())

    def _released(self, key_id: str, release: str) -> bool:
        rows = self._store.rows(
            "SELECT count() FROM privacy_spends WHERE key_id = {key_id:String} "
            "AND release = {release:String}", {"key_id": key_id, "release": release})
        return bool(rows[0][0])

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    @staticmethod
    def _refusal(epsilon_day: float, refills_at: datetime, now: datetime) -> TooManyRequests:
        wait = max(1, int((refills_at - now).total_seconds() + 0.999))
        return TooManyRequests(f"this share link's privacy budget for today (epsilon "
                               f"{epsilon_day:g}) is spent; it refills at "
                               f"{refills_at.isoformat()}", wait)


def _next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)

"""What a share token may be told: counts of at least k visitors, with calibrated noise.

An answer to a share token is a *release* of one or more tables of exact counts (the
rows of a query, its totals, its comparison period...), each counted with every
visitor's contribution bounded (``collector.reports.contribution``). Releasing it:

1. Rows seen by fewer than the site's public k visitors are suppressed: their counts
   are ``None``, whatever the noise would have made of them.
2. The release is named by an HMAC, under the installation's noise secret, of the
   token, the normalised question and the exact counts; the token's budget pays the
   site's epsilon for it once (``collector.reports.budget``), or refuses with 429.
3. Every count gets discrete Laplace noise (``collector.reports.noise``) seeded from
   that HMAC and the count's place in the answer: the same question on the same data
   gets the same answer, so asking again learns nothing. The epsilon is split evenly
   over the counts one visitor can touch (every component of every table), each scaled
   to its sensitivity: the rows a visitor may be in times the component's bound.
4. Noisy counts are made consistent (never negative, visits at least visitors,
   bounces at most visits); rates and averages are computed from them by the caller.
5. The release is kept for the rest of the UTC hour (``ReleaseCache``): the same
   question from the same token within the hour gets it again without a look at the
   data, so new traffic does not make every reload of a public dashboard a new release.

Why this hides one visitor, and what it does not hide: docs/privacy.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from collector.reports.budget import PrivacyBudget, Spending
from collector.reports.contribution import SHARE_BOUNDS, ContributionBounds
from collector.reports.noise import as_fraction, laplace_scale, noise

MECHANISM = "discrete Laplace noise on visitor-bounded counts (docs/privacy.md)"
Key = tuple[Any, ...]
Parts = dict[str, float]


@dataclass(frozen=True)
class ShareAccess:
    """A share token's reading of a site: its id and the site's public settings."""

    key_id: str
    k: int
    epsilon: float
    epsilon_day: float


@dataclass(frozen=True)
class Table:
    """One table of an answer: exact components per row, as bounded SQL counted them."""

    name: str
    rows: Sequence[tuple[Key, Mapping[str, float]]]
    components: tuple[str, ...]
    rows_per_visitor: int  # 1 for a single row (a total), the bound for a breakdown
    # The most one unit (a visitor, unless said otherwise) adds to a component of one row;
    # None: the visitor bounds of ``collector.reports.contribution``.
    row_bounds: Mapping[str, int] | None = None
    threshold: str = "visitors"  # the count below k that suppresses a row


@dataclass
class Published:
    """The noisy tables of a release, ``None`` for a suppressed row, and its cost."""

    tables: dict[str, dict[Key, Parts | None]]
    spending: Spending
    epsilon_per_count: Fraction
    suppressed: dict[str, list[Key]] = field(default_factory=dict)
    shape: Any = None  # what the caller needs besides the counts to show them again

    def row(self, table: str, key: Key) -> Parts | None:
        return self.tables[table].get(key)


class ReleaseCache:
    """Releases given in the current UTC hour, by token and question, the least recently
    used dropped first beyond ``max_rows`` rows in all (a breakdown can hold thousands)."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 max_rows: int = 200_000) -> None:
        self._clock = clock
        self._max_rows = max_rows
        self._rows = 0
        self._entries: OrderedDict[tuple[str, str, int], Published] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key_id: str, question: Mapping[str, Any]) -> Published | None:
        key = self._key(key_id, question)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key_id: str, question: Mapping[str, Any], published: Published) -> None:
        key = self._key(key_id, question)
        with self._lock:
            replaced = self._entries.pop(key, None)
            self._rows -= _size(replaced) if replaced else 0
            self._entries[key] = published
            self._rows += _size(published)
            while self._rows > self._max_rows and len(self._entries) > 1:
                self._rows -= _size(self._entries.popitem(last=False)[1])

    def _key(self, key_id: str, question: Mapping[str, Any]) -> tuple[str, str, int]:
        return key_id, _canonical(question), int(self._clock()) // 3600


def _size(published: Published) -> int:
    return sum(len(rows) for rows in published.tables.values())


@dataclass(frozen=True)
class Releaser:
    """Publishes releases for one share token with the installation's secret and budget."""

    access: ShareAccess
    secret: bytes
    budget: PrivacyBudget
    cache: ReleaseCache
    bounds: ContributionBounds = SHARE_BOUNDS

    def recall(self, question: Mapping[str, Any]) -> Published | None:
        """The release this token got for ``question`` earlier this hour, now free."""
        found = self.cache.get(self.access.key_id, self._settled(question))
        if found is None:
            return None
        spending = dataclasses.replace(found.spending, epsilon=0.0, repeated=True,
                                       spent_today=self.budget.spent_today(self.access.key_id))
        return dataclasses.replace(found, spending=spending)

    def publish(self, question: Mapping[str, Any], tables: Sequence[Table],
                shape: Any = None) -> Published:
        """Suppress, pay for and noise ``tables``, the exact answer to ``question``."""
        counts = sum(len(table.components) for table in tables)
        epsilon_each = as_fraction(self.access.epsilon) / max(1, counts)
        seed = self._seed(question, tables)
        release = hashlib.sha256(b"release\0" + seed).hexdigest()[:32]
        spending = self.budget.spend(self.access.key_id, release, self.access.epsilon,
                                     self.access.epsilon_day)
        published = Published({}, spending, epsilon_each, shape=shape)
        for table in tables:
            noisy: dict[Key, Parts | None] = {}
            for key, parts in table.rows:
                if parts.get(table.threshold, 0) < self.access.k:
                    # Promise: a set seen by fewer than k visitors is never shown, noised or not.
                    noisy[key] = None
                    published.suppressed.setdefault(table.name, []).append(key)
                else:
                    noisy[key] = self._noisy(seed, table, key, parts, epsilon_each)
            published.tables[table.name] = noisy
        self.cache.put(self.access.key_id, self._settled(question), published)
        return published

    def _noisy(self, seed: bytes, table: Table, key: Key, parts: Mapping[str, float],
               epsilon_each: Fraction) -> Parts:
        noisy: Parts = {}
        for part in table.components:
            bound = table.row_bounds[part] if table.row_bounds else self.bounds.of(part)
            scale = laplace_scale(table.rows_per_visitor * bound, epsilon_each)
            noisy[part] = round(parts.get(part, 0.0)) + noise(seed, [table.name, key, part],
                                                              scale)
        return consistent(noisy)

    def _seed(self, question: Mapping[str, Any], tables: Sequence[Table]) -> bytes:
        exact = [[table.name, table.rows_per_visitor,
                  [[list(key), dict(parts)] for key, parts in table.rows]] for table in tables]
        message = _canonical({**self._settled(question), "exact": exact})
        return hmac.new(self.secret, self.access.key_id.encode() + b"\0" + message.encode(),
                        hashlib.sha256).digest()

    def _settled(self, question: Mapping[str, Any]) -> dict[str, Any]:
        """``question`` with the settings its answer depends on: a change makes a new one."""
        return {"question": question, "epsilon": self.access.epsilon, "k": self.access.k,
                "bounds": self.bounds.as_json()}

    def meta(self, published: Published) -> dict[str, Any]:
        """What the answer's ``meta.privacy`` says of it (docs/reports.md)."""
        spending = published.spending
        return {
            "mechanism": MECHANISM, "k": self.access.k,
            "epsilon": spending.epsilon, "epsilon_per_answer": self.access.epsilon,
            "epsilon_per_count": round(float(published.epsilon_per_count), 6),
            "epsilon_per_day": self.access.epsilon_day,
            "epsilon_remaining_today": spending.remaining, "repeated": spending.repeated,
            "budget_refills_at": spending.refills_at.isoformat(),
            "contribution_bounds": self.bounds.as_json()}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def consistent(parts: Parts) -> Parts:
    """Noisy counts as counts can be: never negative, visits >= visitors, bounces <= visits
    (<= entries, under a page filter)."""
    fixed = {name: max(0.0, float(value)) for name, value in parts.items()}
    if "visits" in fixed and "visitors" in fixed:
        fixed["visits"] = max(fixed["visits"], fixed["visitors"])
    if "group_visitors" in fixed and "visitors" in fixed:  # a group holds its converted
        fixed["group_visitors"] = max(fixed["group_visitors"], fixed["visitors"])
    if "entries" in fixed and "visits" in fixed:  # visits entering on the filtered page
        fixed["entries"] = min(fixed["entries"], fixed["visits"])
    if "bounces" in fixed and "visits" in fixed:
        fixed["bounces"] = min(fixed["bounces"], fixed.get("entries", fixed["visits"]))
    return fixed


def suppression_note(k: int) -> str:
    return (f"fewer than {k} visitors: a public share link never shows a number about so few "
            "people (every metric of such a row is null)")

"""A short-lived cache of what a report needs to know about its site.

Reading a site's timezone, goals and thresholds costs three small queries
(about 5 ms), on every request of a dashboard that fires ten at once. They
change only through the admin commands: a change made in this process calls
``settings_changed`` and applies to the next report; one made by another
process sharing a ClickHouse server applies within ``CONTEXT_SECONDS``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

CONTEXT_SECONDS = 10.0
T = TypeVar("T")
_cache: dict[str, tuple[float, int, object]] = {}  # site: (expiry, generation, value)
_generation = [0]
_lock = threading.Lock()


def cached_settings(site: str, load: Callable[[], T]) -> T:
    """``load()``'s answer for ``site``, reused until it expires or settings change."""
    now = time.monotonic()
    with _lock:
        generation = _generation[0]
        entry = _cache.get(site)
    if entry and entry[0] > now and entry[1] == generation:
        return entry[2]  # type: ignore[return-value]
    value = load()
    with _lock:  # stored under the generation it was read in: a change meanwhile wins
        _cache[site] = (now + CONTEXT_SECONDS, generation, value)
    return value


def settings_changed() -> None:
    """Forget every cached answer: a site's goals or thresholds were just written."""
    with _lock:
        _generation[0] += 1
        _cache.clear()

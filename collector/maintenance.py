"""Background duties that must never run on the request path.

One daemon thread runs each duty at its own interval: refreshing the site list,
rotating salts, reloading the data files that changed on disk (geo databases,
the referrer-spam list: ``collector.reloading``). A failing duty is logged and
retried at its next turn; the collector keeps serving with what it last knew.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

logger = logging.getLogger("collector.maintenance")


class Maintenance:
    def __init__(self, duties: Sequence[tuple[float, Callable[[], object]]]) -> None:
        self._duties = list(duties)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="maintenance", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        next_run = [time.monotonic() + interval for interval, _ in self._duties]
        while not self._stop.wait(max(0.0, min(next_run) - time.monotonic())):
            now = time.monotonic()
            for index, (interval, duty) in enumerate(self._duties):
                if now >= next_run[index]:
                    next_run[index] = now + interval
                    try:
                        duty()
                    except Exception:
                        logger.exception("background duty %s failed", duty.__qualname__)

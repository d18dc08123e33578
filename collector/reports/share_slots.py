"""How many reports one share link may run at once.

Reports run on a few connections of their own (``collector.app.REPORT_CONNECTIONS``). A
share link is public: without a bound, whoever holds one could keep every report
connection busy with slow questions, and the site owner's own dashboard would wait
behind them. So each link runs at most ``SHARE_REPORTS_AT_ONCE`` reports at a time;
its other requests wait their turn on the event loop (a shared dashboard asks for a
dozen panels at once), and beyond ``SHARE_REPORTS_WAITING`` waiting ones the next is a
429 with ``Retry-After``. Key holders and dashboard sessions are the site's owners and
are not limited here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

from starlette.concurrency import run_in_threadpool

from collector.errors import TooManyRequests
from collector.reports.auth import SHARE, Grant

# Half the report connections: one link never holds them all.
SHARE_REPORTS_AT_ONCE = 2
# A shared dashboard's panels, and some more: a link asking for more at once is a flood.
SHARE_REPORTS_WAITING = 32

Arguments = ParamSpec("Arguments")
Answered = TypeVar("Answered")


@dataclass
class _Link:
    running: asyncio.Semaphore
    queued: int = 0  # waiting or running


class ShareSlots:
    """Each share link's reports in line, on the event loop (no thread waits here)."""

    def __init__(self, at_once: int = SHARE_REPORTS_AT_ONCE,
                 waiting: int = SHARE_REPORTS_WAITING) -> None:
        self._at_once = at_once
        self._waiting = waiting
        self._links: dict[str, _Link] = {}

    def for_caller(self, caller: Grant | str) -> AbstractAsyncContextManager[None]:
        """A share caller's turn (``slot``); key holders and sessions go straight on."""
        if isinstance(caller, Grant) and caller.kind == SHARE:
            return self.slot(caller.key_id)
        if caller == SHARE:  # a share caller known by its kind only: one line for them all
            return self.slot(SHARE)
        return nullcontext()

    async def run_in_turn(self, caller: Grant | str, report: Callable[Arguments, Answered],
                          *args: Arguments.args, **kwargs: Arguments.kwargs) -> Answered:
        """``report(*args)`` on a worker thread, once ``caller`` has its turn: every report
        endpoint runs its report this way, so none can skip the line."""
        async with self.for_caller(caller):
            return await run_in_threadpool(report, *args, **kwargs)

    @asynccontextmanager
    async def slot(self, key_id: str) -> AsyncIterator[None]:
        """Wait for one of ``key_id``'s slots and hold it for the block; TooManyRequests
        when too many of its requests are in line already."""
        link = self._links.get(key_id)
        if link is None:
            link = self._links[key_id] = _Link(asyncio.Semaphore(self._at_once))
        if link.queued >= self._at_once + self._waiting:
            raise TooManyRequests(f"this share link has {link.queued} reports running or "
                                  "waiting; retry once some have answered", retry_after=1)
        link.queued += 1
        try:
            async with link.running:
                yield
        finally:
            link.queued -= 1
            if not link.queued:
                del self._links[key_id]

"""A value loaded from a file on disk, reloaded in the background when the file changes.

The geo databases and the referrer-spam list are replaced on disk by the update
commands while a collector runs. ``ReloadingFile.check`` is a background duty
(``collector.maintenance``): it ``stat``s the file and loads it again when its
modification time or size changed. Readers on the request path only read
``current``; they never touch the file. A replacement that fails to load is
logged and the old value kept, so a bad update never stops ingestion.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

logger = logging.getLogger("collector.reloading")

T = TypeVar("T")
Signature = tuple[int, int] | None  # (mtime in ns, size), None when the file is missing


class ReloadingFile(Generic[T]):
    """``load(path)``, loaded now and again by ``check`` whenever the file changed."""

    def __init__(self, path: Path, load: Callable[[Path], T],
                 describe: Callable[[T], str] = str) -> None:
        """Load the file once; a failure here propagates, so bad files stop startup."""
        self.path = path
        self._load = load
        self._describe = describe
        self._seen = _signature(path)
        self._current = load(path)

    @property
    def current(self) -> T:
        """The value last loaded successfully."""
        return self._current

    def check(self) -> bool:
        """Reload when the file changed since it was last looked at; True when it did."""
        signature = _signature(self.path)
        if signature == self._seen:
            return False
        # Remembered before loading: a broken file is tried once, not at every check.
        self._seen = signature
        try:
            fresh = self._load(self.path)
        except Exception as error:
            logger.warning("keeping what was loaded from %s: %s", self.path, error)
            return False
        self._current = fresh
        logger.info("reloaded %s: %s", self.path, self._describe(fresh))
        return True


def _signature(path: Path) -> Signature:
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size

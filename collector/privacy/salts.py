"""Daily salts for the visitor hash: random, shared through ClickHouse, destroyed after 48 hours.

Every collector behind a load balancer must hash with the same salt, so salts
live in the ``salts`` table: the first writer of a day wins (earliest
``created_ms``, then lowest bytes) and everyone converges on it. Today's and
yesterday's salts are kept (yesterday's so a visit crossing midnight is not
split); older days are dropped partition by partition, which removes their
bytes from disk. After that no one can link a stored hash back to an IP.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from collections.abc import Callable

from collector.storage import Store

DAY_MS = 86_400_000
SALT_BYTES = 32  # BLAKE2b keys up to 64 bytes; 256 bits is well past the 128 asked for

logger = logging.getLogger("collector.salts")


def day_date(number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=number)


class SaltKeeper:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._salts: dict[int, bytes] = {}
        self._lock = threading.RLock()
        self._rotated_through = -1

    def salt_for(self, timestamp_ms: int) -> bytes:
        """The salt of the UTC day of ``timestamp_ms`` (created on first use of a day)."""
        salt = self._salts.get(timestamp_ms // DAY_MS)
        return salt if salt else self._load(timestamp_ms // DAY_MS)

    def refresh(self) -> None:
        """Background duty: destroy expired salts and converge on the day's winning salt."""
        today = int(self._clock() * 1000) // DAY_MS
        if today > self._rotated_through:
            self.rotate()
        salt = self._read(today)
        if salt is not None:
            self._salts[today] = salt

    def previous_salt(self, timestamp_ms: int) -> bytes | None:
        """Yesterday's salt, only to keep a visit that crosses midnight in one piece."""
        day = timestamp_ms // DAY_MS - 1
        if day not in self._salts:
            self._salts[day] = self._read(day) or b""  # b"": there was none; don't ask again
        return self._salts[day] or None

    def rotate(self) -> list[dt.date]:
        """Destroy every salt older than yesterday; return the days destroyed."""
        today = int(self._clock() * 1000) // DAY_MS
        cutoff = int(day_date(today - 1).strftime("%Y%m%d"))
        partitions = self._store.rows(
            "SELECT DISTINCT partition FROM system.parts WHERE database = currentDatabase() "
            "AND table = 'salts' AND active"
        )
        destroyed = []
        for (partition,) in partitions:
            if int(partition) < cutoff:
                # Promise: IPs are "irrevocably anonymized" — the salt's bytes leave the disk.
                self._store.command(f"ALTER TABLE salts DROP PARTITION {int(partition)}")
                destroyed.append(dt.datetime.strptime(partition, "%Y%m%d").date())
        with self._lock:
            for day in [day for day in self._salts if day < today - 1]:
                del self._salts[day]
        self._rotated_through = today
        if destroyed:
            logger.info("destroyed the salts of %s", ", ".join(map(str, destroyed)))
        return destroyed

    def days_with_salts(self) -> list[dt.date]:
        """Which days have a salt stored (never the salt bytes)."""
        return [row[0] for row in self._store.rows("SELECT DISTINCT day FROM salts ORDER BY day")]

    def _load(self, day: int) -> bytes:
        with self._lock:
            if day > self._rotated_through:
                self.rotate()
            salt = self._read(day)
            if salt is None:
                self._store.command(
                    "INSERT INTO salts (day, salt, created_ms) VALUES "
                    "({day:Date}, {salt:String}, {created:UInt64})",
                    {"day": day_date(day), "salt": secrets.token_hex(SALT_BYTES),
                     "created": int(self._clock() * 1000)},
                )
                salt = self._read(day)
                assert salt is not None, "a salt just written must be readable"
            self._salts[day] = salt
            return salt

    def _read(self, day: int) -> bytes | None:
        rows = self._store.rows(
            "SELECT salt FROM salts WHERE day = {day:Date} ORDER BY created_ms, salt LIMIT 1",
            {"day": day_date(day)},
        )
        return bytes.fromhex(rows[0][0]) if rows else None

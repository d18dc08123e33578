"""Daily salts for the visitor hash: random, shared through ClickHouse, destroyed after 48 hours.

Every collector behind a load balancer must hash with the same salt, so salts
live in the ``salts`` table: the first writer of a day wins (earliest
``created_ms``, then lowest bytes) and everyone converges on it. Today's and
yesterday's salts are kept (yesterday's so a visit crossing midnight is not
split); older days are dropped partition by partition, which removes their
bytes from disk. After that no one can link a stored hash back to an IP.

Midnight never waits for the store: the background duty (``refresh``) writes
tomorrow's salt during the last hours of today. When the store cannot be reached
and no salt of the day is known, ingest hashes with a provisional salt made in
memory; once the store answers, the duty offers it to the table like any first
writer, and adopts the table's salt instead if another collector wrote one first
(docs/privacy.md, "When the database is unreachable", says what that costs).
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
import threading
import time
from collections.abc import Callable

from collector.errors import StorageError
from collector.storage import Store

DAY_MS = 86_400_000
SALT_BYTES = 32  # BLAKE2b keys up to 64 bytes; 256 bits is well past the 128 asked for
# Tomorrow's salt is written this long before its day begins; the duty runs every minute,
# so a store outage must outlast these hours to reach the request path.
PREPARE_AHEAD_MS = 6 * 3_600_000

logger = logging.getLogger("collector.salts")


def day_date(number: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=number)


class SaltKeeper:
    def __init__(self, store: Store, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock
        self._salts: dict[int, bytes] = {}
        self._provisional: dict[int, bytes] = {}  # in use here, not (yet) in the table
        self._unread: set[int] = set()  # yesterday, when the store failed previous_salt
        self._lock = threading.RLock()
        self._rotated_through = -1

    def salt_for(self, timestamp_ms: int) -> bytes:
        """The salt of the UTC day of ``timestamp_ms``; provisional while the store is down."""
        salt = self._salts.get(timestamp_ms // DAY_MS)
        return salt if salt else self._load(timestamp_ms // DAY_MS)

    def refresh(self) -> None:
        """Background duty: destroy expired salts, converge on the day's winning salt, and
        write tomorrow's during the last hours of today."""
        now_ms = int(self._clock() * 1000)
        today = now_ms // DAY_MS
        if today > self._rotated_through:
            self.rotate()
        self._settle(today)
        for day in list(self._unread):
            self._salts[day] = self._read(day) or b""
            self._unread.discard(day)
        if now_ms % DAY_MS >= DAY_MS - PREPARE_AHEAD_MS:
            self._settle(today + 1)

    def previous_salt(self, timestamp_ms: int) -> bytes | None:
        """Yesterday's salt, only to keep a visit that crosses midnight in one piece."""
        day = timestamp_ms // DAY_MS - 1
        if day not in self._salts and day not in self._unread:
            try:
                self._salts[day] = self._read(day) or b""  # b"": none; don't ask again
            except StorageError:
                self._unread.add(day)  # the duty reads it; requests don't wait for the store
        return self._salts.get(day) or None

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
            for kept in (self._salts, self._provisional):
                for day in [day for day in kept if day < today - 1]:
                    del kept[day]
        self._rotated_through = today
        if destroyed:
            logger.info("destroyed the salts of %s", ", ".join(map(str, destroyed)))
        return destroyed

    def days_with_salts(self) -> list[dt.date]:
        """Which days have a salt stored (never the salt bytes)."""
        return [row[0] for row in self._store.rows("SELECT DISTINCT day FROM salts ORDER BY day")]

    def _load(self, day: int) -> bytes:
        with self._lock:
            known = self._salts.get(day)
            if known:  # settled by another thread while this one waited for the lock
                return known
            try:
                if day > self._rotated_through:
                    self.rotate()
                return self._settle(day)
            except StorageError as error:
                return self._provisional_salt(day, error)

    def _settle(self, day: int) -> bytes:
        """The table's salt of ``day`` — written first when it has none — now used here."""
        with self._lock:
            salt = self._read(day)
            if salt is None:
                offered = self._provisional.get(day) or secrets.token_bytes(SALT_BYTES)
                self._store.command(
                    "INSERT INTO salts (day, salt, created_ms) VALUES "
                    "({day:Date}, {salt:String}, {created:UInt64})",
                    {"day": day_date(day), "salt": offered.hex(),
                     "created": int(self._clock() * 1000)},
                )
                salt = self._read(day)
                assert salt is not None, "a salt just written must be readable"
            provisional = self._provisional.pop(day, None)
            if provisional is not None and provisional != salt:
                logger.warning("the salt of %s was written by another collector first: "
                               "hashing with it from now on (visitors seen here before "
                               "now and again later count twice that day)", day_date(day))
            self._salts[day] = salt
            return salt

    def _provisional_salt(self, day: int, error: StorageError) -> bytes:
        salt = secrets.token_bytes(SALT_BYTES)
        self._provisional[day] = salt
        self._salts[day] = salt
        logger.warning("no salt of %s could be read or written (%s): hashing with a "
                       "provisional salt, kept in memory until the store answers",
                       day_date(day), error)
        return salt

    def _read(self, day: int) -> bytes | None:
        rows = self._store.rows(
            "SELECT salt FROM salts WHERE day = {day:Date} ORDER BY created_ms, salt LIMIT 1",
            {"day": day_date(day)},
        )
        return bytes.fromhex(rows[0][0]) if rows else None

"""The secret that keys the noise of share-link answers, shared through the store.

Noise must be the same for the same question on the same data wherever it is asked
(or averaging many answers would remove it), so every collector of an installation
uses one secret, kept in the ``privacy_keys`` table: the first writer wins (earliest
``created_ms``, then lowest bytes), as with the daily salts. A collector that raced
another re-reads the table every ``REFRESH_SECONDS`` and adopts the winner; answers it
gave with its own secret meanwhile were releases of their own, each paid for from the
token's budget (``collector.reports.budget``), so the accounting holds either way.

The secret is never rotated: a new one would give every old question fresh noise.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

from collector.storage import Store

KEY_BYTES = 32
REFRESH_SECONDS = 60.0


class NoiseKey:
    """The installation's noise secret, read (or first written) on first use."""

    def __init__(self, store: Store, clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._clock = clock
        self._lock = threading.Lock()
        self._secret: bytes | None = None
        self._read_at = 0.0

    def secret(self) -> bytes:
        with self._lock:
            now = self._clock()
            if self._secret is None or not 0 <= now - self._read_at < REFRESH_SECONDS:
                self._secret = self._stored() or self._written()
                self._read_at = now
            return self._secret

    def _stored(self) -> bytes | None:
        rows = self._store.rows("SELECT secret FROM privacy_keys ORDER BY created_ms, secret "
                                "LIMIT 1")
        return bytes.fromhex(rows[0][0]) if rows else None

    def _written(self) -> bytes:
        self._store.command(
            "INSERT INTO privacy_keys (created_ms, secret) VALUES ({created:UInt64}, "
            "{secret:String})",
            {"created": int(time.time() * 1000), "secret": secrets.token_bytes(KEY_BYTES).hex()})
        stored = self._stored()
        assert stored is not None, "a key just written must be readable"
        return stored

"""Abuse limits: token buckets per client address and per site, and for failed API-key checks.

An event about to be recorded (``POST /api/event``, ``GET /pixel.gif``; not dropped, not
excluded) takes one token from its client's bucket and one from each of its sites'; an
empty bucket answers 429 with ``Retry-After``. The pipeline calls the check with the
address it resolved anyway (``COLLECTOR_TRUSTED_PROXIES``): it is not resolved twice.
Buckets refill at the configured rate and hold twice as much (a burst of two seconds'
worth), so a page that sends a pageview and a few events at once is never refused.
Requests from this host itself (loopback) are not limited per client: a reverse proxy on
the same host that is not listed in ``COLLECTOR_TRUSTED_PROXIES`` would otherwise put
every visitor in one bucket. An IPv6 client is its /64, the prefix one home or phone
network gets.

Memory is bounded: buckets live in two generations of at most ``max_keys / 2`` each; when
the newer one is full, the older is forgotten. A forgotten bucket starts full again, so an
attacker spraying addresses only makes the limit forget, never refuse, other clients.
Failed API-key checks have buckets of their own, per client, on every endpoint that checks
a key.

Everything here runs on the event loop (the views call the pipeline there), so no lock.

Promise: a client's bucket is found by a keyed hash of its address — SipHash under this
process's random secret (Python's own string hash), or BLAKE2b under a random key when hash
randomization is off — so the address is never stored, logged or kept past the request.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import time
from collections.abc import Callable, Hashable, Sequence
from socket import AF_INET6, inet_pton

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from collector.errors import TooManyRequests, Unauthorized
from collector.privacy import ClientAddressResolver
from collector.reports.auth import Grant, check_token
from collector.settings import Settings
from collector.sites import Site
from collector.storage import Store

# A bucket holds this many seconds of its rate: the burst.
BURST_SECONDS = 2.0
MAX_CLIENT_BUCKETS = 20_000  # 1.8 MB when full (tracemalloc)
MAX_SITE_BUCKETS = 10_000
# Failed API-key checks: 20 at once, then one every 6 seconds (10 a minute), per client.
AUTH_FAILURE_BURST = 20.0
AUTH_FAILURES_PER_SECOND = 1 / 6
MAX_AUTH_BUCKETS = 10_000
TOO_MANY = "too many requests from this client or for this site; retry after Retry-After"
_BLAKE_KEY = os.urandom(16)
# Sums of intervals are not exact: a wait this short is a token already due.
_ROUNDING = 1e-9


class TokenBuckets:
    """Buckets of ``burst`` tokens refilled at ``rate`` per second, keyed by anything hashable.

    Each bucket is one number, the time at which it is full again (the generic cell rate
    algorithm: the same answers as counting tokens, one float a key and no update in
    place). A bucket full again by now is the same as no bucket, so forgetting it is free.
    """

    def __init__(self, rate: float, burst: float, max_keys: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = 1.0 / rate
        # How far ahead of now the "full again" time may be and a token still be left.
        self._tolerance = (burst - 1.0) * self._interval
        self._generation_size = max(1, max_keys // 2)
        self._clock = clock
        self._recent: dict[Hashable, float] = {}
        self._older: dict[Hashable, float] = {}
        self.refused = 0

    def __len__(self) -> int:
        return len(self._recent) + len(self._older)

    def take(self, key: Hashable) -> float:
        """0 when a token was taken (the request may pass), else seconds until one is due."""
        now = self._clock()
        recent = self._recent
        full_at = recent.get(key)
        if full_at is None:
            full_at = self._older.pop(key, now)
            if len(recent) >= self._generation_size:
                self._older, recent = recent, {}
                self._recent = recent
        if full_at < now:
            full_at = now
        wait = full_at - now - self._tolerance
        if wait > _ROUNDING:
            recent[key] = full_at
            self.refused += 1
            return wait
        recent[key] = full_at + self._interval
        return 0.0

    def wait(self, key: Hashable) -> float:
        """Seconds until ``key`` has a token again (0: it has one); takes nothing."""
        full_at = self._recent.get(key)
        if full_at is None:
            full_at = self._older.get(key)
        if full_at is None:
            return 0.0
        wait = full_at - self._clock() - self._tolerance
        return wait if wait > _ROUNDING else 0.0


def client_key(address: str) -> int:
    """The keyed hash a client's bucket is found by; IPv6 addresses by their /64."""
    if ":" in address:
        try:
            return _keyed_hash(inet_pton(AF_INET6, address)[:8])
        except OSError:
            pass  # not an address (a test client's name): hashed as text
    return _keyed_hash(address)


def _blake_hash(value: str | bytes) -> int:
    data = value.encode() if isinstance(value, str) else value
    return int.from_bytes(hashlib.blake2b(data, key=_BLAKE_KEY, digest_size=8).digest(), "little")


# Python hashes str and bytes with SipHash under a secret drawn at startup (about 40 ns,
# against 500 for BLAKE2b); PYTHONHASHSEED set to a number makes that secret fixed.
_keyed_hash: Callable[[str | bytes], int] = hash if sys.flags.hash_randomization else _blake_hash


def _is_loopback(address: str) -> bool:
    return address.startswith("127.") or address == "::1"


def retry_after(wait: float) -> int:
    """The ``Retry-After`` seconds for a wait of ``wait`` seconds: whole, at least 1."""
    return max(1, math.ceil(wait))


class RateLimits:
    """The app's limits (``app.state.rate_limits``), built from its settings."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._addresses = ClientAddressResolver(settings.trusted_proxies)
        client_rate, site_rate = settings.rate_limit_client, settings.rate_limit_site
        self.clients = TokenBuckets(client_rate, client_rate * BURST_SECONDS,
                                    MAX_CLIENT_BUCKETS, clock) if client_rate > 0 else None
        self.sites = TokenBuckets(site_rate, site_rate * BURST_SECONDS,
                                  MAX_SITE_BUCKETS, clock) if site_rate > 0 else None
        self.auth_failures = TokenBuckets(AUTH_FAILURES_PER_SECOND, AUTH_FAILURE_BURST,
                                          MAX_AUTH_BUCKETS, clock)

    def admit(self, address: str, sites: Sequence[Site]) -> None:
        """TooManyRequests when the client or one of ``sites`` is over its limit.

        The pipeline calls it with the address it resolved for the visitor hash, once the
        event is known to be recorded (not dropped, not excluded): the address lives only
        in this call, and only its keyed hash finds the bucket.
        """
        wait = 0.0
        if self.clients is not None and not _is_loopback(address):
            wait = self.clients.take(client_key(address))
        if self.sites is not None and not wait:
            for site in sites:
                wait = max(wait, self.sites.take(site.domain))
        if wait:
            raise TooManyRequests(TOO_MANY, retry_after(wait))

    def refused(self) -> dict[str, int]:
        """Requests refused so far, by limit: client, site, auth."""
        return {"client": self.clients.refused if self.clients else 0,
                "site": self.sites.refused if self.sites else 0,
                "auth": self.auth_failures.refused}

    async def checked_token(self, request: Request, store: Store, token: str | None) -> Grant:
        """``check_token`` in the thread pool, once the client is not over its failures."""
        client = request.client
        # The address lives only in this call; the bucket is found by its keyed hash.
        address = self._addresses.resolve(client.host if client else None, request.headers)
        key = None if _is_loopback(address) else client_key(address)
        if key is not None:
            wait = self.auth_failures.wait(key)
            if wait:
                self.auth_failures.refused += 1
                raise TooManyRequests("too many failed API-key checks from this client",
                                      retry_after(wait))
        try:
            return await run_in_threadpool(check_token, store, token)
        except Unauthorized:
            if key is not None:
                self.auth_failures.take(key)
            raise



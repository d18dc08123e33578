"""One collector at a time migrates a store it shares with others, or removes rows from it.

Collectors started together on one server (a deployment's replicas, a rolling upgrade)
would otherwise apply the same migration at once: one fails on a table another has
just created, or drops one another has just made and recorded as applied. So before
applying anything a collector takes a lease in ``schema_migration_lock``, first writer
wins as with the salts: it writes its row, stamped with the server's clock, waits
``settle`` seconds for rows written at the same moment to land, and holds the lease
while its row is the earliest one not expired. The others wait, then read the applied
versions again (usually nothing is left to do). Waiting or holding, a collector renews
its row every ``lease / 6`` seconds on a connection of its own (the holder's may be
busy with one long statement), so a long backfill keeps the lease, and one killed
part way lets it lapse after ``lease`` seconds.

The same lease serializes what removes rows: a change of the retention TTL, purges
(the daily one of every collector, and ``collector purge``) and erasures. Run together,
an erasure's rebuild of a day's rollups could miss raw rows a purge removed meanwhile,
or two erasures rebuild one day twice (docs/deployment.md, "Removals").

The lease is re-entrant for the thread that holds it (a purge holding it changes the
TTL). The embedded engine needs no row: one process owns its directory, and a lock of
the process keeps its threads (the daily purge, an operator's erasure sent over the
admin channel) one at a time.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from collector.errors import StorageError, StorageUnavailable
from collector.storage.client import Store, open_store
from collector.storage.cluster import Deployment

logger = logging.getLogger("collector")
TABLE = "schema_migration_lock"
LEASE_SECONDS = 60.0
SETTLE_SECONDS = 1.0
WAIT_SECONDS = 3600.0
_NOW_MS = "toUnixTimestamp64Milli(now64(3))"
# Per embedded store (URL, database): the lock of this process's threads; and per thread,
# the stores whose lease it holds.
_PROCESS_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_PROCESS_LOCKS_GUARD = threading.Lock()
_HELD = threading.local()


@contextmanager
def migration_lease(store: Store, deployment: Deployment, lease: float = LEASE_SECONDS,
                    settle: float = SETTLE_SECONDS, wait: float = WAIT_SECONDS,
                    doing: str = "migrating") -> Iterator[None]:
    """Hold the store's lease for the block, unless this thread holds it already: on a
    server the lease row, on the embedded engine this process's lock. ``doing`` names the
    work in what a waiting collector logs ("another collector is migrating DATABASE")."""
    key = (store.url, store.database)
    held: set[tuple[str, str]] = _HELD.__dict__.setdefault("keys", set())
    if key in held:
        yield
        return
    held.add(key)
    try:
        if store.embedded:
            with _process_lock(key):
                yield
        else:
            with _store_lease(store, deployment, lease, settle, wait, doing):
                yield
    finally:
        held.discard(key)


def _process_lock(key: tuple[str, str]) -> threading.Lock:
    with _PROCESS_LOCKS_GUARD:
        return _PROCESS_LOCKS.setdefault(key, threading.Lock())


@contextmanager
def _store_lease(store: Store, deployment: Deployment, lease: float, settle: float,
                 wait: float, doing: str) -> Iterator[None]:
    _create_table(store, deployment)
    holder = uuid.uuid4().hex
    taken_ms = _take(store, holder, lease)
    renewal = threading.Event()
    renewer = _renewal_store(store)
    renewing = threading.Thread(target=_renew, args=(renewer, holder, taken_ms, lease, renewal),
                                name="migration-lease", daemon=True)
    renewing.start()
    try:
        _wait_for_turn(store, deployment, holder, taken_ms, lease, settle, wait, doing)
        yield
    finally:
        renewal.set()
        renewing.join()
        if renewer is not store:
            renewer.close()
        _write(store, holder, taken_ms, expires=str(taken_ms))  # released: expired at once


def _renewal_store(store: Store) -> Store:
    """A connection of the renewal's own to a server: the holder's one client may be
    taken by a mutation for longer than the lease. (Only a stand-in for a server made of
    the embedded engine, in the tests, shares the holder's.)"""
    if store.url.startswith(("http://", "https://")):
        return open_store(store.url, store.database)
    return store


def _wait_for_turn(store: Store, deployment: Deployment, holder: str, taken_ms: int,
                   lease: float, settle: float, wait: float, doing: str) -> None:
    time.sleep(settle)
    started, said = time.monotonic(), False
    while (first := _first_holder(store, deployment)) != holder:
        if time.monotonic() - started > wait:
            raise StorageUnavailable(
                f"another collector has held the migration lease of {store.database} for "
                f"{wait:.0f} s; if none is migrating, its lease lapses {lease:.0f} s after "
                "it stopped renewing it")
        if first is None:  # ours lapsed (the store was away): back in our place
            _write(store, holder, taken_ms, expires=f"{_NOW_MS} + {int(lease * 1000)}")
        elif not said:
            logger.info("another collector is %s %s: waiting for it", doing, store.database)
            said = True
        time.sleep(settle)


def _create_table(store: Store, deployment: Deployment) -> None:
    store.command(
        f"CREATE TABLE IF NOT EXISTS {TABLE}{deployment.on_cluster} "
        "(holder String, taken_ms UInt64, expires_ms UInt64, version UInt64) "
        f"ENGINE = {deployment.engine('ReplacingMergeTree(version)', TABLE)} ORDER BY holder "
        "TTL toDateTime(intDiv(taken_ms, 1000)) + INTERVAL 7 DAY")


def _take(store: Store, holder: str, lease: float) -> int:
    """Write ``holder``'s row stamped by the server's clock; its ``taken_ms``."""
    _write(store, holder, None, expires=f"{_NOW_MS} + {int(lease * 1000)}")
    rows = store.rows(f"SELECT taken_ms FROM {TABLE} FINAL WHERE holder = {{holder:String}}",
                      {"holder": holder})
    return int(rows[0][0])


def _write(store: Store, holder: str, taken_ms: int | None, expires: str) -> None:
    taken = _NOW_MS if taken_ms is None else str(int(taken_ms))
    store.command(f"INSERT INTO {TABLE} (holder, taken_ms, expires_ms, version) SELECT "
                  f"{{holder:String}}, {taken}, {expires}, toUnixTimestamp64Nano(now64(9))",
                  {"holder": holder})


def _first_holder(store: Store, deployment: Deployment) -> str | None:
    if deployment.cluster:
        store.command(f"SYSTEM SYNC REPLICA {TABLE}")  # rows written through other nodes
    rows = store.rows(f"SELECT holder FROM {TABLE} FINAL WHERE expires_ms > {_NOW_MS} "
                      "ORDER BY taken_ms, holder LIMIT 1")
    return str(rows[0][0]) if rows else None


def _renew(store: Store, holder: str, taken_ms: int, lease: float,
           done: threading.Event) -> None:
    while not done.wait(lease / 6):
        try:
            _write(store, holder, taken_ms, expires=f"{_NOW_MS} + {int(lease * 1000)}")
        except StorageError as error:  # the lease lapses if this lasts; the holder finds out
            logger.warning("renewing the migration lease failed: %s", error)

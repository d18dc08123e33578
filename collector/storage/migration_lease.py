"""One collector at a time migrates a store it shares with others.

Collectors started together on one server (a deployment's replicas, a rolling upgrade)
would otherwise apply the same migration at once: one fails on a table another has
just created, or drops one another has just made and recorded as applied. So before
applying anything a collector takes a lease in ``schema_migration_lock``, first writer
wins as with the salts: it writes its row, stamped with the server's clock, waits
``settle`` seconds for rows written at the same moment to land, and holds the lease
while its row is the earliest one not expired. The others wait, then read the applied
versions again (usually nothing is left to do). Waiting or holding, a collector renews
its row every ``lease / 6`` seconds, so a long backfill keeps the lease, and one killed
part way lets it lapse after ``lease`` seconds. The embedded engine needs none of it:
one process owns its directory.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from collector.errors import StorageError, StorageUnavailable
from collector.storage.client import Store
from collector.storage.cluster import Deployment

logger = logging.getLogger("collector")
TABLE = "schema_migration_lock"
LEASE_SECONDS = 60.0
SETTLE_SECONDS = 1.0
WAIT_SECONDS = 3600.0
_NOW_MS = "toUnixTimestamp64Milli(now64(3))"


@contextmanager
def migration_lease(store: Store, deployment: Deployment, lease: float = LEASE_SECONDS,
                    settle: float = SETTLE_SECONDS, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the store's migration lease for the block (at once on the embedded engine)."""
    if store.embedded:
        yield
        return
    _create_table(store, deployment)
    holder = uuid.uuid4().hex
    taken_ms = _take(store, holder, lease)
    renewal = threading.Event()
    renewing = threading.Thread(target=_renew, args=(store, holder, taken_ms, lease, renewal),
                                name="migration-lease", daemon=True)
    renewing.start()
    try:
        _wait_for_turn(store, deployment, holder, taken_ms, lease, settle, wait)
        yield
    finally:
        renewal.set()
        renewing.join()
        _write(store, holder, taken_ms, expires=str(taken_ms))  # released: expired at once


def _wait_for_turn(store: Store, deployment: Deployment, holder: str, taken_ms: int,
                   lease: float, settle: float, wait: float) -> None:
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
            logger.info("another collector is migrating %s: waiting for it", store.database)
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

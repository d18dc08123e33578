"""What the purge, erase and audit tests share: a store of their own, the operations'
context, a search of the data directory, and rollups compared with the raw tables."""

from __future__ import annotations

import secrets
import string
import struct
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import lz4.block
from backports import zstd

from collector.operations import OperationContext, load_operations
from collector.reports.builder import SiteContext
from collector.reports.dimensions import DIMENSIONS
from collector.reports.query import run_report
from collector.reports.request import parse_query
from collector.reports.sampling import Sampler
from collector.settings import Settings
from collector.storage import Store, migrate, open_store
from tests.conftest import fresh_database_name

TABLES = ("events", "visits", "visits_rollup", "visits_rollup_daily", "events_rollup_daily",
          "drops")
# Every dimension the daily rollups answer (goals need goals defined: not here).
ROLLUP_DIMENSIONS = ["", "time:day", *(name for name, spec in DIMENSIONS.items()
                                       if spec.level != "time" and spec.in_rollup
                                       and name != "event:goal")]


def own_store(engine_url: str, label: str) -> Store:
    """A migrated store on a fresh database: a purge sees every site of its database."""
    store = open_store(engine_url, fresh_database_name(label))
    migrate(store)
    return store


def run(store: Store, name: str, settings: Settings | None = None, **params: Any) -> Any:
    """Operation ``name`` on ``store``, as the runner calls it."""
    context = OperationContext(store, settings or Settings.from_env({}))
    return load_operations()[name](context, **params)


def token() -> str:
    """A value no other test writes, to search the data directory for: letters only, which
    ingest's path scrubbing keeps (it replaces runs of 6 digits and 16-character tokens)."""
    return "zq" + "".join(secrets.choice(string.ascii_lowercase) for _ in range(12))


def files_holding(directory: Path, needle: str) -> list[str]:
    """Files below ``directory`` holding ``needle``, as written or inside a compressed block."""
    wanted = needle.encode()
    for _ in range(10):
        try:
            return [str(path.relative_to(directory)) for path in directory.rglob("*")
                    if path.is_file()
                    and any(wanted in chunk for chunk in _readable(path.read_bytes()))]
        except FileNotFoundError:
            # A background merge replaced a part while we read: its rows are in the new
            # part, which this walk may have passed already. Walk again, from the start.
            time.sleep(0.2)
    raise AssertionError(f"{directory} kept changing under the search")


def _readable(data: bytes) -> list[bytes]:
    """The file's bytes, and the contents of the ClickHouse compressed blocks it is made of.

    A block: a 16-byte checksum, the method byte, the compressed size (with the 9 header
    bytes) and the decompressed size, both UInt32 little-endian, then the payload.
    Compression hides a value from a search of the raw bytes once a part is large enough.
    """
    chunks, offset = [data], 0
    while offset + 25 <= len(data):
        method = data[offset + 16]
        size, plain = struct.unpack_from("<II", data, offset + 17)
        end = offset + 16 + size
        if method not in _METHODS or size < 9 or end > len(data):
            break
        if method in _DECOMPRESS:  # the others (Delta, T64...) encode numbers, not text
            chunks.append(_DECOMPRESS[method](data[offset + 25:end], plain))
        offset = end
    return chunks


_DECOMPRESS: dict[int, Callable[[bytes, int], bytes]] = {
    0x02: lambda payload, size: payload,  # NONE
    0x82: lambda payload, size: lz4.block.decompress(payload, uncompressed_size=size),
    0x90: lambda payload, size: zstd.decompress(payload),
}
# Every method byte ClickHouse writes: Multiple (a codec chain), Delta, T64, DoubleDelta,
# Gorilla, the AES ciphers, FPC, ... GCD.
_METHODS = set(_DECOMPRESS) | set(range(0x91, 0x9B))


def row_counts(store: Store, site: str | None = None) -> dict[str, int]:
    where = " WHERE site = {site:String}" if site else ""
    return {table: int(store.rows(f"SELECT count() FROM {table}{where}",
                                  {"site": site})[0][0]) for table in TABLES}


def reports_disagree(store: Store, site: str, first: date, last: date,
                     sampler: Sampler) -> list[str]:
    """The dimensions whose report from the rollups differs from the raw tables'."""
    now = datetime.combine(last, datetime.min.time(), UTC) + timedelta(days=2)
    differing = []
    for dimension in ROLLUP_DIMENSIONS:
        metrics = ["visitors", "pageviews"] if dimension.startswith("event:") else \
            ["visitors", "visits", "pageviews", "bounce_rate", "visit_duration", "events"]
        spec = parse_query({"site_id": site, "metrics": metrics,
                            "dimensions": [dimension] if dimension else [],
                            "date_range": [first.isoformat(), last.isoformat()]})
        raw = run_report(store, spec, SiteContext(site), now, force_raw=True, sampler=sampler)
        rolled = run_report(store, spec, SiteContext(site), now, sampler=sampler)
        assert rolled.meta["source"] == "rollup" and raw.meta["source"] == "raw"
        if rolled.results != raw.results:
            differing.append(dimension or "(totals)")
    return differing

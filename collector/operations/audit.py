"""The audit of removals: one row per applied purge or erase, kept for good.

Each row says when, which command, its scope (the JSON the operator gave: the site,
dates, pattern...) and the rows and bytes removed from each table. Dry runs write
nothing. The ``audit`` table has no TTL and no purge or erase touches it: the
record of a removal outlives the data it describes. ``audit.list`` reads it back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from collector.errors import InvalidField
from collector.operations import OperationContext, operation
from collector.storage import Store


def record_removal(store: Store, command: str, scope: Mapping[str, Any],
                   tables: Mapping[str, Mapping[str, Any]],
                   at: datetime | None = None) -> dict[str, Any]:
    """Write the audit row of a removal applied ``at`` (now); ``tables`` maps a table to
    its ``{"rows": n, "bytes": n}``. Returns the row as ``audit.list`` shows it."""
    at_ms = int((at.timestamp() if at else time.time()) * 1000)
    names = sorted(tables)
    store.command(
        "INSERT INTO audit (at, command, scope, tables, rows, bytes) VALUES "
        "(fromUnixTimestamp64Milli({at:Int64}, 'UTC'), {command:String}, {scope:String}, "
        "{tables:Array(String)}, {rows:Array(UInt64)}, {bytes:Array(UInt64)})",
        {"at": at_ms, "command": command, "scope": json.dumps(scope, sort_keys=True),
         "tables": names, "rows": [int(tables[name]["rows"]) for name in names],
         "bytes": [int(tables[name]["bytes"]) for name in names]},
    )
    return _entry(datetime.fromtimestamp(at_ms / 1000, UTC), command,
                  json.dumps(scope, sort_keys=True), names,
                  [tables[name]["rows"] for name in names],
                  [tables[name]["bytes"] for name in names])


def last_recorded(store: Store, command: str) -> datetime | None:
    """When ``command`` was last applied, per the audit (None: never)."""
    rows = store.rows("SELECT max(at), count() FROM audit WHERE command = {command:String}",
                      {"command": command})
    return _utc(rows[0][0]) if rows and rows[0][1] else None


@operation("audit.list")
def list_entries(context: OperationContext, command: str | None = None,
                 site: str | None = None, limit: int = 100) -> dict[str, Any]:
    """Audit rows, newest first: all of them, or one command's, or those whose scope
    names ``site``; at most ``limit`` (0: every row)."""
    if not isinstance(limit, int) or limit < 0:
        raise InvalidField("limit must be a whole number, 0 for every row", "limit")
    rows = context.store.rows(
        "SELECT at, command, scope, tables, rows, bytes FROM audit "
        "WHERE ({command:Nullable(String)} IS NULL OR command = {command:Nullable(String)}) "
        "AND ({site:Nullable(String)} IS NULL "
        "OR JSONExtractString(scope, 'site') = {site:Nullable(String)}) "
        "ORDER BY at DESC" + (" LIMIT {limit:UInt64}" if limit else ""),
        {"command": command, "site": site, "limit": limit})
    return {"entries": [_entry(_utc(at), name, scope, list(tables), list(counts), list(sizes))
                        for at, name, scope, tables, counts, sizes in rows]}


def _entry(at: datetime, command: str, scope: str, tables: list[str], rows: list[int],
           sizes: list[int]) -> dict[str, Any]:
    return {"at": at.isoformat(timespec="milliseconds"), "command": command,
            "scope": json.loads(scope),
            "tables": {name: {"rows": int(count), "bytes": int(size)}
                       for name, count, size in zip(tables, rows, sizes)},
            "rows": sum(int(count) for count in rows),
            "bytes": sum(int(size) for size in sizes)}


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

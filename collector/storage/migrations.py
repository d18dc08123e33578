"""Versioned schema migrations: numbered SQL files applied once, in order.

Each ``NNNN_name.sql`` file beside this module holds statements separated by
``;`` on a line end. Applied versions are recorded in ``schema_migrations``, so
running them again (at every startup, or by ``collector migrate``) is a no-op.
"""

from __future__ import annotations

import logging
import re
import time
from importlib import resources

from collector.storage.client import Store

logger = logging.getLogger("collector")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
# "-- backfill: VIEW TARGET": after the statements, run VIEW's SELECT over the rows
# already stored, into TARGET (a materialized view only sees rows inserted later).
_BACKFILL = re.compile(r"^-- backfill: (\w+) (\w+)$", re.MULTILINE)


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every migration shipped with the package."""
    folder = resources.files("collector.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def applied_versions(store: Store) -> set[int]:
    _ensure_migrations_table(store)
    return {row[0] for row in store.rows("SELECT version FROM schema_migrations")}


def migrate(store: Store, retention_months: int = 13) -> list[str]:
    """Apply pending migrations and the retention TTL; return the names applied."""
    done = applied_versions(store)
    applied = []
    for version, name, sql in available_migrations():
        if version in done:
            continue
        for statement in split_statements(sql):
            store.command(statement)
        for view, target in _BACKFILL.findall(sql):
            _backfill(store, view, target)
        store.command(
            "INSERT INTO schema_migrations (version, name, applied_ms) VALUES "
            "({version:UInt32}, {name:String}, {now:UInt64})",
            {"version": version, "name": name, "now": int(time.time() * 1000)},
        )
        applied.append(name)
    apply_retention(store, retention_months)
    return applied


def apply_retention(store: Store, months: int) -> None:
    """Make the raw-events TTL match the retention setting (a no-op when it already does)."""
    if months < 1:
        raise ValueError("retention must be at least one month")
    ddl = store.rows(
        "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
        "AND name = 'events'"
    )[0][0]
    wanted = f"toIntervalMonth({months})"
    if wanted not in ddl.replace(" ", ""):
        store.command(
            f"ALTER TABLE events MODIFY TTL toDateTime(timestamp) + INTERVAL {int(months)} MONTH",
            settings={"materialize_ttl_after_modify": 1},
        )


def _backfill(store: Store, view: str, target: str) -> None:
    select = store.rows("SELECT as_select FROM system.tables WHERE database = currentDatabase() "
                        "AND name = {view:String}", {"view": view})[0][0]
    # Minutes on a large store: say so before, and how long it took after.
    logger.info("filling %s from the rows already stored...", target)
    started = time.monotonic()
    store.command(f"INSERT INTO {target} {select}")
    logger.info("filled %s in %.1f s", target, time.monotonic() - started)


def split_statements(sql: str) -> list[str]:
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.lstrip().startswith("--")
    )
    return [part.strip() for part in re.split(r";\s*\n", without_comments + "\n") if part.strip()]


def _ensure_migrations_table(store: Store) -> None:
    store.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, applied_ms UInt64) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )

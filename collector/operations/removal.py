"""Removing rows so that their bytes leave the disk, not only the query results.

Purges and erasures both come here: count what a condition matches in each
partition of a table (a dry run stops there), then drop the partitions in which
every row matches and rewrite the others without the matching rows.

Why not lightweight ``DELETE FROM``: it only marks rows as gone, and their bytes
stay in the parts until some later merge. ``ALTER TABLE ... DELETE`` (a
mutation, waited for with ``mutations_sync``) writes each affected part anew
without the rows; the replaced parts then wait for ClickHouse's background
cleanup, up to ``cleanup_delay_period`` (30 s) later, and on a server for
``old_parts_lifetime`` (480 s by default) first. ``clear_replaced_parts`` runs
that cleanup at once and says what is still waiting.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collector.operations import Progress
from collector.storage import Store

MUTATION_SETTINGS = {"mutations_sync": 2}
# Dropping a partition runs the table's cleanup of replaced parts on the spot; no part
# ever belongs to this one (partitions are months, ``YYYYMM``), so nothing else happens.
_NO_PARTITION = "none"
_PARTITION_ID = re.compile(r"^\w+$")
_OLD_PARTS_LIFETIME = re.compile(r"\bold_parts_lifetime = (\d+)")
_CLEANUP_ATTEMPTS = 10
_CLEANUP_PAUSE_SECONDS = 0.2


@dataclass
class Removal:
    """What a condition matches in one table: rows, their bytes on disk, and how they go."""

    table: str
    condition: str  # SQL over the table's columns, with bound parameters
    parameters: dict[str, Any]
    rows: int = 0
    bytes: int = 0
    drop: list[str] = field(default_factory=list)  # partitions in which every row matches
    rewrite: list[str] = field(default_factory=list)  # partitions rewritten without them
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        return len(self.drop) + len(self.rewrite)

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "bytes": self.bytes, "partitions_dropped": self.drop,
                "partitions_rewritten": self.rewrite}


def plan_removal(store: Store, table: str, condition: str, parameters: dict[str, Any],
                 settings: dict[str, Any] | None = None) -> Removal:
    """The rows of ``table`` matching ``condition``, partition by partition.

    Bytes are the partitions' bytes on disk in proportion to the rows that go (whole
    partitions exactly): compression leaves no per-row size to measure.
    """
    removal = Removal(table, condition, parameters, settings=dict(settings or {}))
    matched = store.rows(f"SELECT _partition_id, count() FROM {table} WHERE {condition} "
                         "GROUP BY _partition_id ORDER BY _partition_id", parameters,
                         settings=removal.settings or None)
    sizes = _partition_sizes(store, table)
    for partition, rows in matched:
        stored_rows, stored_bytes = sizes.get(partition, (rows, 0))
        removal.rows += rows
        removal.bytes += stored_bytes if rows >= stored_rows \
            else round(stored_bytes * rows / max(stored_rows, 1))
        (removal.drop if rows >= stored_rows else removal.rewrite).append(partition)
    return removal


def apply_removal(store: Store, removal: Removal,
                  step: Callable[[str], None] = lambda label: None) -> None:
    """Remove what ``removal`` planned; ``step`` is told of each partition done."""
    for partition in removal.drop:
        # Rows may have arrived since the plan: drop only what still matches entirely.
        if _rows_not_matching(store, removal, partition):
            _rewrite(store, removal, partition)
        else:
            store.command(f"ALTER TABLE {removal.table} DROP PARTITION ID "
                          f"'{_checked(partition)}'")
        step(f"{removal.table}: partition {partition}")
    for partition in removal.rewrite:
        _rewrite(store, removal, partition)
        step(f"{removal.table}: partition {partition}")


def active_parts(store: Store, table: str) -> list[str]:
    return [str(row[0]) for row in store.rows(
        "SELECT name FROM system.parts WHERE database = currentDatabase() "
        "AND table = {table:String} AND active", {"table": table})]


def clear_replaced_parts(store: Store, table: str, replaced: list[str]) -> int:
    """Delete from disk those of the parts ``replaced`` (names, active before a removal)
    that drops and rewrites made inactive; the number still on disk (a server keeps
    them for ``old_parts_lifetime``, or a query is reading them)."""
    waiting = 0
    for attempt in range(_CLEANUP_ATTEMPTS):
        if attempt:
            time.sleep(_CLEANUP_PAUSE_SECONDS)
        store.command(f"ALTER TABLE {table} DROP PARTITION ID '{_NO_PARTITION}'")
        waiting = store.rows(
            "SELECT count() FROM system.parts WHERE database = currentDatabase() "
            "AND table = {table:String} AND NOT active AND has({replaced:Array(String)}, name)",
            {"table": table, "replaced": replaced})[0][0]
        if not waiting:
            break
    return int(waiting)


def old_parts_lifetime(store: Store, table: str) -> int:
    """Seconds ClickHouse keeps a replaced part of ``table`` before deleting it."""
    engine = store.rows("SELECT engine_full FROM system.tables WHERE database = "
                        "currentDatabase() AND name = {table:String}", {"table": table})
    own = _OLD_PARTS_LIFETIME.search(engine[0][0]) if engine else None
    if own:
        return int(own.group(1))
    return int(store.rows("SELECT value FROM system.merge_tree_settings "
                          "WHERE name = 'old_parts_lifetime'")[0][0])


def remove_all(store: Store, removals: list[Removal], progress: Progress | None,
               notes: Callable[[str], None]) -> None:
    """Apply every planned removal in order, then clear the parts they replaced from disk."""
    total = sum(removal.steps for removal in removals)
    done = 0

    def step(label: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total, label)

    touched = [removal.table for removal in removals if removal.steps]
    before = {table: active_parts(store, table) for table in dict.fromkeys(touched)}
    for removal in removals:
        apply_removal(store, removal, step)
    for table, replaced in before.items():
        waiting = clear_replaced_parts(store, table, replaced)
        if waiting:
            notes(f"{waiting} replaced parts of {table} are still on disk: ClickHouse "
                  f"deletes them within old_parts_lifetime "
                  f"({old_parts_lifetime(store, table)} s)")


def _rewrite(store: Store, removal: Removal, partition: str) -> None:
    store.command(f"ALTER TABLE {removal.table} DELETE IN PARTITION ID "
                  f"'{_checked(partition)}' WHERE {removal.condition}", removal.parameters,
                  settings={**MUTATION_SETTINGS, **removal.settings})


def _rows_not_matching(store: Store, removal: Removal, partition: str) -> int:
    return int(store.rows(
        f"SELECT count() FROM {removal.table} WHERE _partition_id = {{partition:String}} "
        f"AND NOT ({removal.condition})", {**removal.parameters, "partition": partition},
        settings=removal.settings or None)[0][0])


def _partition_sizes(store: Store, table: str) -> dict[str, tuple[int, int]]:
    rows = store.rows(
        "SELECT partition_id, sum(rows), sum(bytes_on_disk) FROM system.parts "
        "WHERE database = currentDatabase() AND table = {table:String} AND active "
        "GROUP BY partition_id", {"table": table})
    return {partition: (int(count), int(size)) for partition, count, size in rows}


def _checked(partition: str) -> str:
    """Partition ids come from ``system.parts``; refuse anything that is not one."""
    if not _PARTITION_ID.match(partition):
        raise ValueError(f"not a partition id: {partition!r}")
    return partition

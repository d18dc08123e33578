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

On a cluster (``Deployment``) rows are counted through the Distributed tables (every
shard), partitions are dropped and rows deleted in the local tables ``ON CLUSTER``
(each shard's replicas follow through Keeper), and parts are those of every replica
(``clusterAllReplicas``): the bytes removed and the parts still waiting are counted on
all of them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collector.operations import Progress
from collector.storage import Store
from collector.storage.cluster import SINGLE_NODE, Deployment

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
    deployment: Deployment = SINGLE_NODE
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


def plan_removal(store: Store, deployment: Deployment, table: str, condition: str,
                 parameters: dict[str, Any], settings: dict[str, Any] | None = None) -> Removal:
    """The rows of ``table`` matching ``condition``, partition by partition.

    Bytes are the partitions' bytes on disk (of every replica) in proportion to the rows
    that go (whole partitions exactly): compression leaves no per-row size to measure.
    """
    removal = Removal(table, condition, parameters, deployment, settings=dict(settings or {}))
    matched = store.rows(f"SELECT _partition_id, count() FROM {table} WHERE {condition} "
                         "GROUP BY _partition_id ORDER BY _partition_id", parameters,
                         settings=removal.settings or None)
    sizes = _partition_sizes(store, removal, [str(partition) for partition, _ in matched])
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
            store.command(f"ALTER TABLE {removal.deployment.alter_target(removal.table)} "
                          f"DROP PARTITION ID '{_checked(partition)}'",
                          settings=removal.deployment.ddl_settings or None)
        step(f"{removal.table}: partition {partition}")
    for partition in removal.rewrite:
        _rewrite(store, removal, partition)
        step(f"{removal.table}: partition {partition}")


def active_parts(store: Store, table: str, deployment: Deployment = SINGLE_NODE) -> list[str]:
    """The names of the active parts holding ``table``'s rows (on any replica)."""
    return [str(row[0]) for row in store.rows(
        f"SELECT DISTINCT name FROM {deployment.parts} WHERE database = {{database:String}} "
        "AND table = {table:String} AND active",
        {"database": store.database, "table": deployment.stored_table(table)})]


def clear_replaced_parts(store: Store, table: str, replaced: list[str],
                         deployment: Deployment = SINGLE_NODE) -> int:
    """Delete from disk those of the parts ``replaced`` (names, active before a removal)
    that drops and rewrites made inactive; the number still on disk on any replica (a
    server keeps them for ``old_parts_lifetime``, or a query is reading them)."""
    waiting = 0
    for attempt in range(_CLEANUP_ATTEMPTS):
        if attempt:
            time.sleep(_CLEANUP_PAUSE_SECONDS)
        store.command(f"ALTER TABLE {deployment.alter_target(table)} DROP PARTITION ID "
                      f"'{_NO_PARTITION}'", settings=deployment.ddl_settings or None)
        waiting = store.rows(
            f"SELECT count() FROM {deployment.parts} WHERE database = {{database:String}} "
            "AND table = {table:String} AND NOT active AND has({replaced:Array(String)}, name)",
            {"database": store.database, "table": deployment.stored_table(table),
             "replaced": replaced})[0][0]
        if not waiting:
            break
    return int(waiting)


def old_parts_lifetime(store: Store, table: str, deployment: Deployment = SINGLE_NODE) -> int:
    """Seconds ClickHouse keeps a replaced part of ``table`` before deleting it."""
    engine = store.rows("SELECT engine_full FROM system.tables WHERE database = "
                        "currentDatabase() AND name = {table:String}",
                        {"table": deployment.stored_table(table)})
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

    touched = {removal.table: removal.deployment for removal in removals if removal.steps}
    before = {table: active_parts(store, table, deployment)
              for table, deployment in touched.items()}
    for removal in removals:
        apply_removal(store, removal, step)
    for table, replaced in before.items():
        deployment = touched[table]
        waiting = clear_replaced_parts(store, table, replaced, deployment)
        if waiting:
            notes(f"{waiting} replaced parts of {table} are still on disk: ClickHouse "
                  f"deletes them within old_parts_lifetime "
                  f"({old_parts_lifetime(store, table, deployment)} s)")


def _rewrite(store: Store, removal: Removal, partition: str) -> None:
    store.command(f"ALTER TABLE {removal.deployment.alter_target(removal.table)} DELETE IN "
                  f"PARTITION ID '{_checked(partition)}' WHERE {removal.condition}",
                  removal.parameters, settings={**MUTATION_SETTINGS, **removal.settings,
                                                **removal.deployment.ddl_settings})


def _rows_not_matching(store: Store, removal: Removal, partition: str) -> int:
    return int(store.rows(
        f"SELECT count() FROM {removal.table} WHERE _partition_id = {{partition:String}} "
        f"AND NOT ({removal.condition})", {**removal.parameters, "partition": partition},
        settings=removal.settings or None)[0][0])


def _partition_sizes(store: Store, removal: Removal,
                     partitions: list[str]) -> dict[str, tuple[int, int]]:
    """Rows (counted as reads count them: one replica of each shard) and bytes on disk
    (every replica's) of each of ``partitions``."""
    if not partitions:
        return {}
    deployment = removal.deployment
    rows = dict(store.rows(
        f"SELECT _partition_id, count() FROM {removal.table} "
        "WHERE _partition_id IN {partitions:Array(String)} GROUP BY _partition_id",
        {"partitions": partitions}))
    sizes = dict(store.rows(
        f"SELECT partition_id, sum(bytes_on_disk) FROM {deployment.parts} "
        "WHERE database = {database:String} AND table = {table:String} AND active "
        "AND has({partitions:Array(String)}, partition_id) GROUP BY partition_id",
        {"database": store.database, "table": deployment.stored_table(removal.table),
         "partitions": partitions}))
    return {partition: (int(rows.get(partition, 0)), int(sizes.get(partition, 0)))
            for partition in partitions}


def _checked(partition: str) -> str:
    """Partition ids come from ``system.parts``; refuse anything that is not one."""
    if not _PARTITION_ID.match(partition):
        raise ValueError(f"not a partition id: {partition!r}")
    return partition

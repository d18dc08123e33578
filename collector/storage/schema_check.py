"""Does the migrated store hold exactly what ``collector.schema`` declares?

Run after the migrations, at every startup: the declaration is what the code
writes and reads, the migrations are what built the tables, and nothing else
ties the two together. A column or rollup dimension declared without its
migration (or a migration that forgot the declaration) stops the collector
here with the difference, instead of answering empty reports later. So does a
store laid out for another deployment (``collector.storage.cluster``): a cluster's
database opened as one node would write past its Distributed tables, and a single
node's opened as a cluster would not be replicated.
"""

from __future__ import annotations

import dataclasses
import re

from collector.errors import SchemaMismatch
from collector.schema import TABLES, rollup_dimensions
from collector.storage.client import Store
from collector.storage.cluster import LOCAL_SUFFIX, SHARDING_KEYS, SINGLE_NODE, Deployment
from collector.storage.rollups import dimensions_in_view

_HOW_TO = "add a migration for it (docs/architecture.md, \"Adding a dimension\")"
_VIEW_READS = re.compile(r"\bFROM (?:\w+\.)?(\w+)\b")
_DISTRIBUTED_CLUSTER = re.compile(r"^Distributed\('([^']*)'")


def schema_differences(store: Store, deployment: Deployment = SINGLE_NODE) -> list[str]:
    """Every way the store differs from the deployment's layout and from the declaration,
    one sentence each."""
    return layout_differences(store, deployment) + _declaration_differences(store, deployment)


def _declaration_differences(store: Store, deployment: Deployment) -> list[str]:
    differences = []
    for table, declared in TABLES.items():
        stored_table = deployment.stored_table(table)
        stored = _columns(store, stored_table)
        if deployment.is_sharded(table) and _columns(store, table) != stored:
            differences.append(f"{table} (Distributed) does not have the columns of "
                               f"{stored_table}")
        for column in declared:
            found = stored.pop(column.name, None)
            if found is None:
                differences.append(f"{stored_table}.{column.name} is declared but not stored")
            elif found != (column.type, column.codec):
                differences.append(f"{stored_table}.{column.name} is stored as {found[0]} "
                                   f"CODEC({found[1]}), declared {column.type} "
                                   f"CODEC({column.codec})")
        differences += [f"{stored_table}.{name} is stored but not declared" for name in stored]
    views = _view_selects(store)
    carried = dimensions_in_view(views.get("visits_rollup_daily_mv", ""))
    if carried != list(rollup_dimensions("visits")):
        differences.append(f"visits_rollup_daily_mv carries {carried}, the schema declares "
                           f"{list(rollup_dimensions('visits'))}")
    grouped = _group_keys(views.get("events_rollup_daily_mv", ""))
    if grouped != ["site", "hour", *rollup_dimensions("events")]:
        differences.append(f"events_rollup_daily_mv groups by {grouped}, the schema declares "
                           f"{['site', 'hour', *rollup_dimensions('events')]}")
    return differences


def layout_differences(store: Store, deployment: Deployment = SINGLE_NODE) -> list[str]:
    """How the tables' engines and the views' sources differ from ``deployment``'s layout."""
    engines = {str(name): (str(engine), str(full)) for name, engine, full in store.rows(
        "SELECT name, engine, engine_full FROM system.tables "
        "WHERE database = currentDatabase() AND NOT is_temporary")}
    if not deployment.cluster:
        # Replicated engines alone prove nothing (a Replicated database makes every table
        # one); Distributed tables over local ones are the cluster layout.
        distributed = sorted(name for name, (engine, _) in engines.items()
                             if engine == "Distributed")
        if not distributed:
            return []
        found = _DISTRIBUTED_CLUSTER.match(engines[distributed[0]][1])
        return [f"the store is laid out for a ClickHouse cluster ({', '.join(distributed)} "
                "Distributed): set COLLECTOR_CLICKHOUSE_CLUSTER="
                f"{found.group(1) if found else 'its name'}"]
    deployment = dataclasses.replace(deployment, database=store.database)
    views = _view_selects(store)
    differences, not_replicated = [], []
    for name, (engine, full) in sorted(engines.items()):
        base = name[:-len(LOCAL_SUFFIX)] if name.endswith(LOCAL_SUFFIX) else name
        if engine == "MaterializedView":
            read = [table for table in _VIEW_READS.findall(views[name])
                    if table in SHARDING_KEYS]
            if read:
                differences.append(f"{name} reads the Distributed table {read[0]}, not the "
                                   "local one: each node receiving an insert would roll up "
                                   "the rows of every shard")
        elif deployment.is_sharded(base) and name == base:
            expected = deployment.distributed_engine(base)
            if _compact(full) != _compact(expected):
                shown = full if engine == "Distributed" else engine
                differences.append(f"{name} is {shown}, not {expected}")
        elif not engine.startswith("Replicated"):
            not_replicated.append(f"{name} ({engine})")
    if not_replicated:
        differences.append(f"not replicated: {', '.join(not_replicated)}; this database was "
                           f"migrated for one node, not for the cluster {deployment.cluster!r}")
    return differences


def verify_schema(store: Store, deployment: Deployment = SINGLE_NODE) -> None:
    layout = layout_differences(store, deployment)
    if layout:
        raise SchemaMismatch("the store is not laid out for this deployment: "
                             + "; ".join(layout))
    differences = _declaration_differences(store, deployment)
    if differences:
        raise SchemaMismatch("the store does not match collector/schema.py: "
                             + "; ".join(differences) + f"; {_HOW_TO}")


def _columns(store: Store, table: str) -> dict[str, tuple[str, str]]:
    """Each column of ``table``, in order: its type and codec."""
    return {str(name): (str(kind), _codec(str(codec))) for name, kind, codec in store.rows(
        "SELECT name, type, compression_codec FROM system.columns "
        "WHERE database = currentDatabase() AND table = {table:String} ORDER BY position",
        {"table": table})}


def _compact(sql: str) -> str:
    return re.sub(r"\s+", "", sql)


def _codec(shown: str) -> str:
    """``CODEC(Delta(8), ZSTD(1))`` as declared: ``Delta(8), ZSTD(1)``."""
    return shown[len("CODEC("):-1] if shown.startswith("CODEC(") else shown


def _view_selects(store: Store) -> dict[str, str]:
    return {str(name): str(select) for name, select in store.rows(
        "SELECT name, as_select FROM system.tables WHERE database = currentDatabase() "
        "AND engine = 'MaterializedView'")}


def _group_keys(select: str) -> list[str]:
    found = re.search(r"GROUP BY ([\w, ]+)$", select.strip())
    return [key.strip() for key in found.group(1).split(",")] if found else []

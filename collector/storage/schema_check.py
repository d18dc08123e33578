"""Does the migrated store hold exactly what ``collector.schema`` declares?

Run after the migrations, at every startup: the declaration is what the code
writes and reads, the migrations are what built the tables, and nothing else
ties the two together. A column or rollup dimension declared without its
migration (or a migration that forgot the declaration) stops the collector
here with the difference, instead of answering empty reports later.
"""

from __future__ import annotations

import re

from collector.errors import SchemaMismatch
from collector.schema import TABLES, rollup_dimensions
from collector.storage.client import Store
from collector.storage.rollups import dimensions_in_view

_HOW_TO = "add a migration for it (docs/architecture.md, \"Adding a dimension\")"


def schema_differences(store: Store) -> list[str]:
    """Every way the store differs from the declaration, one sentence each."""
    differences = []
    for table, declared in TABLES.items():
        stored = {str(name): (str(kind), _codec(str(codec))) for name, kind, codec in store.rows(
            "SELECT name, type, compression_codec FROM system.columns "
            "WHERE database = currentDatabase() AND table = {table:String} ORDER BY position",
            {"table": table})}
        for column in declared:
            found = stored.pop(column.name, None)
            if found is None:
                differences.append(f"{table}.{column.name} is declared but not stored")
            elif found != (column.type, column.codec):
                differences.append(f"{table}.{column.name} is stored as {found[0]} "
                                   f"CODEC({found[1]}), declared {column.type} "
                                   f"CODEC({column.codec})")
        differences += [f"{table}.{name} is stored but not declared" for name in stored]
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


def verify_schema(store: Store) -> None:
    differences = schema_differences(store)
    if differences:
        raise SchemaMismatch("the store does not match collector/schema.py: "
                             + "; ".join(differences) + f"; {_HOW_TO}")


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

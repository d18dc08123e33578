"""What ``collector copy`` moves: the tables of a store, their units, fingerprints and rows.

A *unit* is what the copy moves, checks and records at once: one UTC day of a table
with a time column (``events``, ``visits``, the rollups, ``drops``), or a whole small
table (sites, keys, goals, report settings...). Its *fingerprint* is its row count and
the sum of a hash of every row, as the table's engine reads it merged (``FINAL`` for
the engines that merge rows: visits as final states, sites as latest versions,
rollups with their aggregate states finalized), so it is the same on any store that
holds the same rows, however they were inserted or merged since.

On a cluster (the target's ``Deployment``) the copy reads and writes the Distributed
tables under the usual names, and a rollup's rows are merged by its key across the
shards before they are counted: each shard rolls up the rows it holds, so one key has a
row on several shards, which ``FINAL`` (per shard) does not merge.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from collector.errors import SchemaMismatch
from collector.privacy.salts import DAY_MS, day_date
from collector.schema import TIME_COLUMNS
from collector.storage import Store
from collector.storage.cluster import LOCAL_SUFFIX, SINGLE_NODE, Deployment
from collector.storage.rollups import AGGREGATE_TABLES

DAY_SECONDS = DAY_MS // 1000
# Engines whose rows merge (FINAL reads them as merged).
_MERGING = ("Replacing", "Collapsing", "Summing", "Aggregating", "Coalescing")
_VIEW_TARGET = re.compile(r"\bTO\s+(?:`?\w+`?\.)?`?(\w+)`?", re.IGNORECASE)
_AGGREGATE_FUNCTION = re.compile(r"^(Simple)?AggregateFunction\((\w+),")
_COLUMN_NAME = re.compile(r"^\w+$")
# Each store records, and coordinates, its own migrations.
NOT_COPIED = frozenset({"schema_migrations", "schema_migration_lock"})
SALTS_TABLE = "salts"
Fingerprint = tuple[int, int]  # rows, sum of their hashes (mod 2^64)


@dataclass(frozen=True)
class Table:
    """A table as the copy sees it; ``time_column`` None: copied whole."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, type), in order
    engine: str
    time_column: str | None
    derived: bool  # filled by a materialized view from the raw inserts
    sorting_key: tuple[str, ...] = ()  # the columns rows merge by (a rollup's)

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    @property
    def final(self) -> str:
        return " FINAL" if any(kind in self.engine for kind in _MERGING) else ""

    def day_of(self) -> str:
        """The UTC day of a row (salts: the day the salt is for)."""
        if self.time_column is None:
            return "day" if self.name == SALTS_TABLE else "toDate(0)"
        return f"toDate({self.time_column}, 'UTC')"

    def row_hash(self) -> str:
        values = [f"finalizeAggregation({name})" if kind.startswith("AggregateFunction")
                  else name for name, kind in self.columns]
        return f"cityHash64({', '.join(values)})"

    def merged(self, where: str) -> str:
        """What follows FROM to read the rows under ``where`` as merged: ``FINAL``, and a
        rollup's rows grouped by its key with their states merged (the same rows as
        ``FINAL`` on one node; on a cluster, across the shards too)."""
        if not (self.derived and self.sorting_key):
            return f"{self.name}{self.final} WHERE {where}"
        values = [name if name in self.sorting_key else _merged(name, kind)
                  for name, kind in self.columns]
        return (f"(SELECT {', '.join(values)} FROM {self.name} WHERE {where} "
                f"GROUP BY {', '.join(self.sorting_key)})")


def _merged(name: str, kind: str) -> str:
    """A rollup column's value over the rows of one key, of the column's own type."""
    found = _AGGREGATE_FUNCTION.match(kind)
    if found is None:
        return f"any({name}) AS {name}"
    function = found.group(2)
    return f"{function}({name}) AS {name}" if found.group(1) \
        else f"{function}MergeState({name}) AS {name}"


def tables_of(store: Store, deployment: Deployment = SINGLE_NODE) -> dict[str, Table]:
    """Every table of the store's database the copy moves, by the name it is read and
    written by (on a cluster a sharded table's Distributed one, with its local table's
    engine and key)."""
    listed = store.rows("SELECT name, engine, create_table_query, sorting_key "
                        "FROM system.tables WHERE database = currentDatabase()")
    derived = {_logical(match.group(1), deployment) for _, engine, ddl, _ in listed
               if engine == "MaterializedView" and (match := _VIEW_TARGET.search(ddl))}
    stored = {name: (engine, key) for name, engine, _, key in listed}
    columns: dict[str, list[tuple[str, str]]] = {}
    for table, name, kind in store.rows(
            "SELECT table, name, type FROM system.columns WHERE database = currentDatabase() "
            "AND default_kind NOT IN ('MATERIALIZED', 'ALIAS', 'EPHEMERAL') "
            "ORDER BY table, position"):
        columns.setdefault(table, []).append((name, kind))
    time_columns = {**TIME_COLUMNS, **AGGREGATE_TABLES}
    tables = {}
    for name in stored:
        if _logical(name, deployment) != name or name in NOT_COPIED:
            continue  # a local table: copied through its Distributed one
        engine, key = stored[deployment.stored_table(name)]
        if engine.endswith("MergeTree"):
            tables[name] = Table(name, tuple(columns[name]), engine, time_columns.get(name),
                                 name in derived, _key_columns(key))
    return tables


def _logical(name: str, deployment: Deployment) -> str:
    """The name a table is read by: a local table's Distributed one."""
    base = name.removesuffix(LOCAL_SUFFIX)
    return base if base != name and deployment.is_sharded(base) else name


def _key_columns(key: str) -> tuple[str, ...]:
    """The sorting key as column names (none when a part of it is an expression)."""
    parts = tuple(part.strip() for part in key.split(","))
    return parts if key and all(_COLUMN_NAME.match(part) for part in parts) else ()


def matching_tables(source: Store, target: Store,
                    deployment: Deployment = SINGLE_NODE) -> list[Table]:
    """The source's tables, after checking the target (laid out for ``deployment``) has
    each with the same columns."""
    tables, on_target = tables_of(source), tables_of(target, deployment)
    for name, table in tables.items():
        other = on_target.get(name)
        if other is None or other.columns != table.columns:
            raise SchemaMismatch(
                f"the target's table {name} differs from the source's ("
                + ("missing" if other is None else "other columns")
                + "): are both migrated by this version of the collector?")
    # Small tables first (sites and keys before the rows that name them), rollups last.
    return sorted(tables.values(),
                  key=lambda table: (table.derived, table.time_column is not None, table.name))


@dataclass(frozen=True)
class Unit:
    """One day of a table (``day`` None: the whole table, or every salt policy keeps)."""

    table: Table
    day: dt.date | None
    oldest_salt: dt.date | None = None

    @property
    def key(self) -> str:
        return f"{self.table.name}:{self.day.isoformat() if self.day else '*'}"

    def where(self) -> tuple[str, dict[str, Any]]:
        if self.day is not None:
            start = (self.day - dt.date(1970, 1, 1)).days * DAY_SECONDS
            return _between(self.table, start, start + DAY_SECONDS)
        if self.table.name == SALTS_TABLE and self.oldest_salt is not None:
            # Promise: no salt older than the policy's 48 hours leaves the source.
            return "day >= {oldest:Date}", {"oldest": self.oldest_salt}
        return "1", {}


def _between(table: Table, start_second: int, end_second: int) -> tuple[str, dict[str, Any]]:
    column = table.time_column
    return (f"{column} >= fromUnixTimestamp64Milli({{start:Int64}}, 'UTC') AND "
            f"{column} < fromUnixTimestamp64Milli({{end:Int64}}, 'UTC')",
            {"start": start_second * 1000, "end": end_second * 1000})


def fingerprints_by_day(store: Store, table: Table,
                        unit_filter: tuple[str, dict[str, Any]] = ("1", {})
                        ) -> dict[dt.date, Fingerprint]:
    """Each day's fingerprint (whole tables: one, under the epoch's day)."""
    where, parameters = unit_filter
    rows = store.rows(f"SELECT {table.day_of()} AS day, count(), sum({table.row_hash()}) "
                      f"FROM {table.merged(where)} GROUP BY day", parameters)
    return {day: (int(count), int(hashes)) for day, count, hashes in rows}


def fingerprint(store: Store, unit: Unit) -> Fingerprint:
    where, parameters = unit.where()
    [(count, hashes)] = store.rows(
        f"SELECT count(), sum({unit.table.row_hash()}) FROM {unit.table.name}"
        f"{unit.table.final} WHERE {where}", parameters)
    return int(count), int(hashes)


def batches(store: Store, unit: Unit,
            batch_rows: int) -> Iterator[tuple[str, dict[str, Any], int]]:
    """The unit cut into runs of whole seconds of about ``batch_rows`` rows (a busier second
    is a batch of its own), each as its filter and its rows: the same cuts each time the
    same rows are stored."""
    assert unit.day is not None and unit.table.time_column is not None
    where, parameters = unit.where()
    seconds = store.rows(f"SELECT toUnixTimestamp({unit.table.time_column}) AS second, "
                         f"count() FROM {unit.table.name}{unit.table.final} WHERE {where} "
                         "GROUP BY second ORDER BY second", parameters)
    start, rows = 0, 0
    for second, count in seconds:
        if rows and rows + count > batch_rows:
            yield (*_between(unit.table, start, int(second)), rows)
            rows = 0
        if not rows:
            start = int(second)
        rows += int(count)
    if rows:
        yield (*_between(unit.table, start, int(seconds[-1][0]) + 1), rows)


def rows_sql(unit: Unit, where: str) -> str:
    """The SELECT of the unit's rows under ``where``, as the copy moves them."""
    return (f"SELECT {', '.join(unit.table.column_names)} FROM {unit.table.name}"
            f"{unit.table.final} WHERE {where}")


def days_ago(days: int, now: float) -> dt.date:
    return day_date(int(now * 1000) // DAY_MS - days)

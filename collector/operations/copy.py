"""Operation ``copy.copy``: an embedded installation moved onto a ClickHouse server, row for row.

``collector copy --to http(s)://user:password@host:8123/database [--cluster NAME]`` reads
the embedded store (which no ``collector serve`` may be writing: the copy must see every
row) and writes the server's database, or the cluster's:

1. the schema: the target is migrated by this version (laid out for the cluster ``NAME``
   when given, as ``COLLECTOR_CLICKHOUSE_CLUSTER`` would), then compared table by table;
2. small tables whole (sites, keys, goals, report settings, retention, audit...): the
   rows the target lacks, by their hash; salts only for today and yesterday, the
   days ``collector.privacy.salts`` keeps;
3. ``events``, ``visits`` (final states) and ``drops`` by (table, UTC day) units, in
   batches of whole seconds, each batch with a deduplication token made of the unit's
   nonce and the batch's number; the target's materialized views roll them up as
   they arrive, as for live traffic;
4. the rollups then compared day by day with the source's; a day that differs (its raw
   rows were purged from the source, or never rolled up the same way) is replaced by
   the source's rows, aggregate states as they are;
5. counts per table and day on both sides, which the command prints.

On a cluster every read and insert goes through the Distributed tables (inserts answered
once each shard has its rows), deletions to the local tables ``ON CLUSTER``, and the
rollups are compared merged across the shards (``copy_tables``).

A checkpoint (``DATA_DIR/copy/<target>.json``) records each unit begun (its nonce and
the source's fingerprint) and finished. Run again after an interruption, the copy skips
finished units and redoes a begun one with the same tokens, so the batches already in
are deduplicated: nothing is stored twice. A begun unit whose source rows changed since
(a server ran on the directory in between) is deleted on the target and copied afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from collector.errors import ConfigurationError, DataDirectoryBusy, InvalidField
from collector.operations import OperationContext, operation
from collector.operations.copy_tables import (
    SALTS_TABLE,
    Fingerprint,
    Table,
    Unit,
    batches,
    days_ago,
    fingerprint,
    fingerprints_by_day,
    matching_tables,
    rows_sql,
)
from collector.settings import redacted_url
from collector.storage import Store, migrate, open_store
from collector.storage.cluster import SINGLE_NODE, Deployment
from collector.wal import segments_on_disk

DEFAULT_BATCH_ROWS = 20_000
# Mutations finish before the call returns: rows deleted are gone when the copy goes on.
_SYNCHRONOUS = {"mutations_sync": 2}


class Checkpoint:
    """Units begun and finished, for one target, in a JSON file written atomically."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.existed = path.is_file()
        saved = json.loads(path.read_text()) if self.existed else {}
        self.units: dict[str, dict[str, Any]] = saved.get("units", {})
        self.target = target

    def begun(self, unit: Unit) -> dict[str, Any] | None:
        return self.units.get(unit.key)

    def begin(self, unit: Unit, source: Fingerprint) -> str:
        nonce = secrets.token_hex(8)
        self.units[unit.key] = {"nonce": nonce, "source": list(source), "done": False}
        self.save()
        return nonce

    def finish(self, unit: Unit, source: Fingerprint) -> None:
        self.units[unit.key] = {**self.units.get(unit.key, {}), "source": list(source),
                                "done": True}
        self.save()

    def done(self, unit: Unit, source: Fingerprint) -> bool:
        """Finished, on the rows the source holds now (else to be copied again)."""
        state = self.units.get(unit.key, {})
        return bool(state.get("done")) and state.get("source") == list(source)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".tmp")
        partial.write_text(json.dumps({"target": self.target, "units": self.units}, indent=1))
        os.replace(partial, self.path)


class Copy:
    """One run of the copy from the context's store to ``target``."""

    def __init__(self, context: OperationContext, target: Store, checkpoint: Checkpoint,
                 batch_rows: int, deployment: Deployment = SINGLE_NODE) -> None:
        self.context, self.source, self.target = context, context.store, target
        self.checkpoint, self.batch_rows = checkpoint, batch_rows
        self.deployment = deployment  # the target's
        self.sent: dict[str, int] = {}
        self.conflicts: list[str] = []
        self.oldest_salt = days_ago(1, time.time())
        self._done_rows, self._total_rows = 0, 0

    def run(self, tables: list[Table]) -> None:
        units = [unit for table in tables if not table.derived for unit in self._units(table)]
        pending = [(unit, source) for unit, source in units
                   if not self.checkpoint.done(unit, source)]
        self._total_rows = sum(source[0] for _, source in pending)
        for unit, source in pending:
            if unit.day is None:
                self._copy_missing_rows(unit, source)
            else:
                self._copy_unit(unit, source)
        for table in tables:
            if table.derived:
                self._reconcile(table)

    def whole(self, table: Table) -> Unit:
        """A small table's one unit (of the salts, those the policy keeps)."""
        return Unit(table, None, self.oldest_salt if table.name == SALTS_TABLE else None)

    def _units(self, table: Table) -> list[tuple[Unit, Fingerprint]]:
        if table.time_column is None:
            return [(self.whole(table), fingerprint(self.source, self.whole(table)))]
        return [(Unit(table, day), found) for day, found
                in sorted(fingerprints_by_day(self.source, table).items())]

    def _copy_unit(self, unit: Unit, source: Fingerprint) -> None:
        """Batches with tokens made of the unit's nonce: a resumed unit stores each once."""
        target = fingerprint(self.target, unit)
        if target == source:
            self._progress(unit, source[0])
            self.checkpoint.finish(unit, source)
            return
        begun = self.checkpoint.begun(unit)
        if begun is None or begun.get("source") != list(source):
            if target[0] and begun is None:
                self.conflicts.append(f"{unit.key}: the target holds {target[0]:,} rows this "
                                      "copy did not write; left as they are")
                self._progress(unit, source[0])
                return
            if target[0]:  # begun on rows the source no longer holds: start afresh
                self._delete_on_target(unit)
            nonce = self.checkpoint.begin(unit, source)
        else:
            nonce = str(begun["nonce"])
        for number, (where, parameters, rows) in enumerate(
                batches(self.source, unit, self.batch_rows)):
            self._send(unit, rows_sql(unit, where), parameters, rows,
                       token=f"copy-{nonce}-{number}")
            self._progress(unit, rows)
        self._finish_when_equal(unit, source)

    def _copy_missing_rows(self, unit: Unit, source: Fingerprint) -> None:
        """A small table: the rows whose hash the target lacks (idempotent without tokens)."""
        where, parameters = unit.where()
        hashes = (f"SELECT {unit.table.row_hash()} FROM {unit.table.name}{unit.table.final} "
                  f"WHERE {where}")
        present = {row[0] for row in self.target.rows(hashes, parameters)}
        missing = [row[0] for row in self.source.rows(hashes, parameters)
                   if row[0] not in present]
        chosen = f"({where}) AND {unit.table.row_hash()} IN {{chosen:Array(UInt64)}}"
        for start in range(0, len(missing), self.batch_rows):
            part = missing[start:start + self.batch_rows]
            self._send(unit, rows_sql(unit, chosen), {**parameters, "chosen": part}, len(part))
        self._progress(unit, source[0])
        self._finish_when_equal(unit, source)

    def _reconcile(self, table: Table) -> None:
        """Make each day of a rollup equal to the source's, replacing the days that differ."""
        source, target = (fingerprints_by_day(store, table)
                          for store in (self.source, self.target))
        for day in sorted(source.keys() | target.keys()):
            if source.get(day) == target.get(day):
                continue
            unit = Unit(table, day)
            if day in target:
                self._delete_on_target(unit)
            if day in source:
                where, parameters = unit.where()
                # A token of its own: a day replaced again is never taken for a replay.
                self._send(unit, rows_sql(unit, where), parameters, source[day][0],
                           token=f"copy-{secrets.token_hex(8)}-{unit.key}")

    def _send(self, unit: Unit, sql: str, parameters: dict[str, Any], rows: int,
              token: str | None = None) -> None:
        payload = self.source.raw_rows(sql, parameters)
        self.target.insert_raw(unit.table.name, unit.table.column_names, payload, token=token)
        self.sent[unit.table.name] = self.sent.get(unit.table.name, 0) + rows

    def _delete_on_target(self, unit: Unit) -> None:
        where, parameters = unit.where()
        self.target.command(
            f"ALTER TABLE {self.deployment.alter_target(unit.table.name)} DELETE WHERE {where}",
            parameters, settings={**_SYNCHRONOUS, **self.deployment.ddl_settings})

    def _finish_when_equal(self, unit: Unit, source: Fingerprint) -> None:
        if fingerprint(self.target, unit) == source:
            self.checkpoint.finish(unit, source)

    def _progress(self, unit: Unit, rows: int) -> None:
        self._done_rows += rows
        self.context.progress(self._done_rows, self._total_rows, unit.key)


@operation("copy.copy")
def copy_installation(context: OperationContext, to: str,
                      batch_rows: int = DEFAULT_BATCH_ROWS, cluster: str = "") -> dict[str, Any]:
    """Copy this (embedded) installation into the database at ``to`` (of the ClickHouse
    cluster ``cluster``, when named), resumable, and count the rows of every table and day
    on both sides."""
    _refuse_a_live_source(context)
    if urlsplit(to).scheme not in ("http", "https"):
        raise InvalidField("name a ClickHouse server: http(s)://user:password@host:8123/db",
                           "to")
    if batch_rows < 1:
        raise InvalidField("must be at least 1", "batch_rows")
    deployment = Deployment(cluster)
    target = open_store(to)
    try:
        migrate(target, context.settings.retention_months, deployment,
                rollup_retention_months=context.settings.rollup_retention_months)
        return copy_to(context, target, Deployment(cluster, target.database), to, batch_rows)
    finally:
        target.close()


def copy_to(context: OperationContext, target: Store, deployment: Deployment, to: str,
            batch_rows: int = DEFAULT_BATCH_ROWS) -> dict[str, Any]:
    """The copy into ``target`` (at ``to``), migrated for ``deployment``, and its counts."""
    shown = redacted_url(to if urlsplit(to).path.strip("/")
                         else f"{to.rstrip('/')}/{target.database}")
    checkpoint = Checkpoint(_checkpoint_path(context, to, target.database), shown)
    tables = matching_tables(context.store, target, deployment)
    _refuse_a_foreign_target(target, checkpoint)
    copy = Copy(context, target, checkpoint, batch_rows, deployment)
    copy.run(tables)
    verified = [_verified(copy, table) for table in tables]
    for conflict in copy.conflicts:
        context.notes.append(conflict)
    return {"target": shown, "cluster": deployment.cluster or None,
            "checkpoint": str(checkpoint.path), "tables": verified,
            "salts_from": copy.oldest_salt.isoformat(),
            "verified": all(not table["mismatched_days"] for table in verified)}


def _refuse_a_live_source(context: OperationContext) -> None:
    if context.server_state is not None:
        raise DataDirectoryBusy(
            "`collector serve` is running on this data directory and keeps writing to it: a "
            "copy must see every row. Stop it, run the copy, then start the collectors on "
            "the server")
    if not context.store.embedded:
        raise ConfigurationError("collector copy moves an embedded installation; "
                                 "COLLECTOR_CLICKHOUSE_URL already names a server")
    waiting = segments_on_disk(context.settings.wal_path)
    if waiting:
        raise ConfigurationError(
            f"the write-ahead log {context.settings.wal_path} holds {waiting} batches not "
            "yet stored: start `collector serve` once and stop it (it writes them first), "
            "then copy")


def _refuse_a_foreign_target(target: Store, checkpoint: Checkpoint) -> None:
    """A first copy goes into an empty database: rows there would be counted as copied."""
    if checkpoint.existed:
        return
    held = {table: target.rows(f"SELECT count() FROM {table}")[0][0]
            for table in ("events", "visits")}
    if any(held.values()):
        raise ConfigurationError(
            f"the target database already holds {held['events']:,} events and "
            f"{held['visits']:,} visit rows, and no copy to it began here: copy into an "
            "empty database")


def _checkpoint_path(context: OperationContext, to: str, database: str) -> Path:
    parts = urlsplit(to)
    where = f"{parts.hostname}:{parts.port or ''}/{database}"
    name = hashlib.sha256(where.encode()).hexdigest()[:16]
    return context.settings.data_dir.resolve() / "copy" / f"{name}.json"


def _verified(copy: Copy, table: Table) -> dict[str, Any]:
    """Rows per day on both sides (a small table: its count), and the days that differ."""
    kept = copy.whole(table).where() if table.time_column is None else ("1", {})
    source, target = (fingerprints_by_day(store, table, kept)
                      for store in (copy.source, copy.target))
    by_day = table.time_column is not None or table.name == SALTS_TABLE
    days = sorted(source.keys() | target.keys())
    rows = [{"day": day.isoformat() if by_day else None, "source": source.get(day, (0, 0))[0],
             "target": target.get(day, (0, 0))[0]} for day in days]
    return {"table": table.name, "days": rows,
            "source_rows": sum(row["source"] for row in rows),
            "target_rows": sum(row["target"] for row in rows),
            "sent_rows": copy.sent.get(table.name, 0),
            "mismatched_days": [row["day"] for row, day in zip(rows, days)
                                if source.get(day) != target.get(day)]}

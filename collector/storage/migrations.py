"""Versioned schema migrations: numbered SQL files, rendered per deployment, applied once.

Each ``NNNN_name.sql`` file beside this module holds statements separated by
``;`` on a line end. Applied versions are recorded in ``schema_migrations``, so
running them again (at every startup, or by ``collector migrate``) is a no-op.

Files are templates, rendered for the deployment before they run:

    {{on_cluster}}            nothing on one node; `` ON CLUSTER `name` `` on a cluster
    {{engine: MergeTree}}     the engine as written on one node; its Replicated form,
                              with the table's own replication path, on a cluster
    {{visits_rollup_select}}, {{visits_rollup_daily_select: DIMENSIONS}},
    {{events_rollup_daily_select: DIMENSIONS}}
                              the rollup views' SELECTs (``collector.storage.rollups``)

On a cluster each rendered statement is then laid out by ``Deployment.layout``
(``collector.storage.cluster``): a sharded table becomes its local tables and a
Distributed table under its own name, views read the local tables.

Two comment directives run after a file's statements, over the rows already
stored (a materialized view only sees rows inserted after it exists):

    -- backfill: VIEW TARGET          VIEW's whole SELECT into TARGET
    -- backfill-dimensions: A, B      the daily visits rollup, for added dimensions only
"""

from __future__ import annotations

import dataclasses
import logging
import re
import time
from importlib import resources

from collector.errors import ConfigurationError
from collector.schema import TIME_COLUMNS
from collector.storage.client import Store
from collector.storage.cluster import SINGLE_NODE, Deployment
from collector.storage.migration_lease import migration_lease
from collector.storage.rollups import AGGREGATE_TABLES, RENDERERS, visits_rollup_daily_select
from collector.storage.schema_check import verify_schema

logger = logging.getLogger("collector")
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_BACKFILL = re.compile(r"^-- backfill: (\w+) (\w+)$", re.MULTILINE)
_BACKFILL_DIMENSIONS = re.compile(r"^-- backfill-dimensions: ([\w, ]+)$", re.MULTILINE)
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*(?::([^}]*))?\}\}")
_CREATED_TABLE = re.compile(r"CREATE TABLE (?:IF NOT EXISTS )?(\w+)")
# Mutations (type changes) finish before the next statement runs: a migration is done
# when it returns, and its duration is the real one.
MIGRATION_SETTINGS = {"mutations_sync": 2}


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL template) for every migration shipped with the package."""
    folder = resources.files("collector.storage") / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text()))
    return sorted(found)


def render(template: str, deployment: Deployment = SINGLE_NODE) -> list[str]:
    """The statements of a migration template, rendered for ``deployment``."""
    statements = []
    for statement in split_statements(template):
        created = _CREATED_TABLE.search(statement)

        def replace(match: re.Match[str], table: str = created.group(1) if created else "") \
                -> str:
            name, argument = match.group(1), (match.group(2) or "").strip()
            if name == "on_cluster":
                return deployment.on_cluster
            if name == "engine":
                if not table:
                    raise ConfigurationError("{{engine}} outside CREATE TABLE")
                return deployment.engine(argument, table)
            if name in RENDERERS:
                return RENDERERS[name](argument)
            raise ConfigurationError(f"unknown migration placeholder {{{{{name}}}}}")

        statements += deployment.layout(_PLACEHOLDER.sub(replace, statement))
    return statements


def applied_versions(store: Store, deployment: Deployment = SINGLE_NODE) -> set[int]:
    _ensure_migrations_table(store, deployment)
    if deployment.cluster:
        # Another collector may have migrated through another node a moment ago: fetch
        # what Keeper knows before deciding what is left to apply.
        store.command("SYSTEM SYNC REPLICA schema_migrations")
    return {row[0] for row in store.rows("SELECT version FROM schema_migrations")}


def migrate(store: Store, retention_months: int = 13, deployment: Deployment = SINGLE_NODE,
            up_to: int | None = None, rollup_retention_months: int | None = None) -> list[str]:
    """Apply pending migrations (up to version ``up_to``) and the retention TTL
    (``apply_retention``: the rollups' only when ``rollup_retention_months`` is given).

    Returns the names applied. A fully migrated store is then checked against
    ``collector.schema`` and the deployment's layout: a declared column without its
    migration, or a store laid out for another deployment, stops here.
    """
    if deployment.cluster:
        if store.embedded:
            raise ConfigurationError(
                "COLLECTOR_CLICKHOUSE_CLUSTER needs a ClickHouse server "
                "(COLLECTOR_CLICKHOUSE_URL=http(s)://...); the embedded engine is one node")
        deployment = dataclasses.replace(deployment, database=store.database)
    applied = []
    if _pending(applied_versions(store, deployment), up_to):
        # Collectors sharing a server migrate it one at a time.
        with migration_lease(store, deployment):
            done = applied_versions(store, deployment)  # what one migrating meanwhile did
            for version, name, template in available_migrations():
                if version in done or (up_to is not None and version > up_to):
                    continue
                _apply(store, name, template, deployment)
                store.command(
                    "INSERT INTO schema_migrations (version, name, applied_ms) VALUES "
                    "({version:UInt32}, {name:String}, {now:UInt64})",
                    {"version": version, "name": name, "now": int(time.time() * 1000)},
                )
                applied.append(name)
    apply_retention(store, retention_months, deployment, rollup_retention_months)
    if up_to is None:
        verify_schema(store, deployment)
    return applied


def _pending(done: set[int], up_to: int | None) -> bool:
    return any(version not in done and (up_to is None or version <= up_to)
               for version, _, _ in available_migrations())


def _apply(store: Store, name: str, template: str, deployment: Deployment) -> None:
    started = time.monotonic()
    for statement in render(template, deployment):
        store.command(statement, settings=MIGRATION_SETTINGS)
    for view, target in _BACKFILL.findall(template):
        # On a cluster the view reads its node's local tables; the backfill reads them all.
        select = deployment.reading_distributed(_view_select(store, view))
        _run_logged(store, f"filling {target} from the rows already stored",
                    f"INSERT INTO {target} {select}")
    for listed in _BACKFILL_DIMENSIONS.findall(template):
        dimensions = [part.strip() for part in listed.split(",") if part.strip()]
        _run_logged(store, f"rolling up {', '.join(dimensions)} of the visits already stored",
                    "INSERT INTO visits_rollup_daily "
                    + visits_rollup_daily_select(dimensions, with_total=False))
    logger.info("applied migration %s in %.1f s", name, time.monotonic() - started)


def _view_select(store: Store, view: str) -> str:
    return str(store.rows("SELECT as_select FROM system.tables WHERE database = "
                          "currentDatabase() AND name = {view:String}", {"view": view})[0][0])


def _run_logged(store: Store, what: str, sql: str) -> None:
    # Minutes on a large store: say so before, and how long it took after.
    logger.info("%s...", what)
    started = time.monotonic()
    store.command(sql)
    logger.info("%s: done in %.1f s", what, time.monotonic() - started)


def apply_retention(store: Store, months: int, deployment: Deployment = SINGLE_NODE,
                    rollup_months: int | None = None) -> None:
    """Make the tables' TTL match the retention settings (a no-op when it already does).

    Raw events and visits are kept ``months``, the rollups ``rollup_months`` (0: forever;
    None: their TTL is left as it is, for callers that do not know the setting).
    """
    if months < 1:
        raise ConfigurationError(f"retention must be at least 1 month, not {months}")
    if rollup_months is not None and 0 < rollup_months < months:
        # Reports read old days from the rollups: they must not vanish before the raw rows.
        raise ConfigurationError(
            f"COLLECTOR_ROLLUP_RETENTION_MONTHS={rollup_months} is below "
            f"COLLECTOR_RETENTION_MONTHS={months}: the rollups must be kept at least as long "
            "as the raw rows (0 keeps them forever)")
    if not _retention_changes(store, months, deployment, rollup_months):
        return
    # Materializing a TTL deletes rows: collectors started together with new settings
    # change it one at a time, as they remove rows (migration_lease), each doing only
    # what the one before it left.
    with migration_lease(store, deployment, doing="changing the retention of"):
        for statement in _retention_changes(store, months, deployment, rollup_months):
            store.command(statement, settings={"materialize_ttl_after_modify": 1})


def _retention_changes(store: Store, months: int, deployment: Deployment,
                       rollup_months: int | None) -> list[str]:
    """The ALTERs that make the tables' TTL match the settings (none: they do)."""
    tiers = [(table, f"toDateTime({column})", months) for table, column in TIME_COLUMNS.items()]
    if rollup_months is not None:
        tiers += [(table, column, rollup_months) for table, column in AGGREGATE_TABLES.items()]
    changes = []
    for table, moment, kept in tiers:
        ddl = store.rows(
            "SELECT create_table_query FROM system.tables WHERE database = currentDatabase() "
            "AND name = {table:String}", {"table": deployment.stored_table(table)})[0][0]
        if not kept:
            if " TTL " in ddl:
                changes.append(f"ALTER TABLE {deployment.alter_target(table)} REMOVE TTL")
        elif f"toIntervalMonth({int(kept)})" not in ddl.replace(" ", ""):
            changes.append(f"ALTER TABLE {deployment.alter_target(table)} MODIFY TTL "
                           f"{moment} + INTERVAL {int(kept)} MONTH")
    return changes


def split_statements(sql: str) -> list[str]:
    without_comments = "\n".join(
        line for line in sql.splitlines() if not line.lstrip().startswith("--")
    )
    return [part.strip() for part in re.split(r";\s*\n", without_comments + "\n") if part.strip()]


def _ensure_migrations_table(store: Store, deployment: Deployment) -> None:
    if deployment.cluster:
        # Every node needs the database before an ON CLUSTER statement creates tables in it;
        # opening the store created it on the node it connected to only.
        store.command(f"CREATE DATABASE IF NOT EXISTS `{store.database}`{deployment.on_cluster}")
    store.command(
        f"CREATE TABLE IF NOT EXISTS schema_migrations{deployment.on_cluster} "
        "(version UInt32, name String, applied_ms UInt64) "
        f"ENGINE = {deployment.engine('ReplacingMergeTree', 'schema_migrations')} "
        "ORDER BY version"
    )

"""Where each table lives: on one node, or on a ClickHouse cluster.

On one node (no ``COLLECTOR_CLICKHOUSE_CLUSTER``) every table is what its migration says. On a
cluster there are two kinds:

* **sharded** (``SHARDING_KEYS``: what ingest writes, and the rollups): each shard holds
  ``NAME_local``, replicated between the shard's replicas, and every node holds ``NAME``,
  a Distributed table over the shards. Reads and inserts name ``NAME`` as on one node.
  Events and visits are sharded by the visitor hash, so every row of one visitor, and
  so every version of one visit, lands on one shard: collapsing (``FINAL``, the
  VersionedCollapsingMergeTree) and a visit's events meet there. Materialized views are
  created on every node over the local tables: each shard rolls up its own rows when
  they arrive, and reads merge the shards' aggregate states.
* **everywhere** (every other table: sites, salts, keys, goals, settings, audit, the
  applied migrations, and whatever a new migration creates unless it is added to
  ``SHARDING_KEYS``): one Replicated table whose replication path names no shard, so
  every node of every shard is a replica of it and holds all its rows. Small tables
  read locally and correct on every node: a salt or a key written through any node
  reaches the others within Keeper's replication delay.

``Deployment.layout`` turns one rendered migration statement into what the cluster
runs; ``stored_table`` and ``alter_target`` say which table holds the rows, for code
that alters them (retention, removals, the copy), and ``parts`` where their parts are
listed. Everything else reads and inserts through the usual names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from collector.errors import ConfigurationError

LOCAL_SUFFIX = "_local"
DEFAULT_DATABASE = "collector"
SHARDING_KEYS = {
    # A visitor's rows together (see above); the visitor hash is already uniform.
    "events": "visitor",
    "visits": "visitor",
    # Written with deduplication tokens: a replayed batch must split across the shards
    # exactly as the first attempt did, so the key is a function of the row.
    "drops": "cityHash64(site)",
    # Filled on each shard by the views over its own rows; only backfills insert through
    # the Distributed table, and where those rows go does not matter: every read merges
    # all shards. rand() also keeps optimize_skip_unused_shards from pruning shards by a
    # key the views never followed.
    "events_rollup": "rand()",
    "visits_rollup": "rand()",
    "visits_rollup_daily": "rand()",
    "events_rollup_daily": "rand()",
}
DDL_TIMEOUT_SECONDS = 3600
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_ENGINE = re.compile(r"^(\w+)(?:\((.*)\))?$", re.DOTALL)
_CREATE_TABLE = re.compile(r"^CREATE TABLE (IF NOT EXISTS )?(\w+)")
_CREATE_VIEW = re.compile(r"^CREATE MATERIALIZED VIEW ")
_ALTER_TABLE = re.compile(r"^ALTER TABLE (\w+)")
_DROP_TABLE = re.compile(r"^DROP TABLE (?:IF EXISTS )?(\w+)")
_COPIED_COLUMNS = re.compile(r"\bAS (\w+)(\s+ENGINE\b)")
_VIEW_TARGET = re.compile(r"\bTO (\w+)\b")
_READ_TABLE = re.compile(r"\b(FROM|JOIN)(\s+)(\w+)\b")
_LOCAL_READ = re.compile(rf"\b(?:\w+\.)?(\w+){LOCAL_SUFFIX}\b")
# What a Distributed table accepts of an ALTER: its column list only.
_COLUMN_COMMAND = re.compile(r"^(ADD|DROP|MODIFY|RENAME|COMMENT) COLUMN\b")
_DEDUPLICATION_WINDOW = re.compile(r"\bnon_replicated_deduplication_window = (\d+)")
# Replicated tables remember inserted blocks in Keeper instead, for a week here (newer
# servers default to an hour), so that a batch the write-ahead log replays after a long
# outage is still recognized.
_REPLICATED_DEDUPLICATION = (r"replicated_deduplication_window = \1, "
                             "replicated_deduplication_window_seconds = 604800")


@dataclass(frozen=True)
class Deployment:
    """What migrations render for: one node (the default), or a named ClickHouse cluster.

    ``database`` is the collector's database, written into the cluster's Distributed
    tables (a remote node evaluates ``currentDatabase()`` in its own default database);
    ``migrate`` sets it from the store.
    """

    cluster: str = ""
    database: str = DEFAULT_DATABASE

    def __post_init__(self) -> None:
        if self.cluster and not _CLUSTER_NAME.match(self.cluster):
            raise ConfigurationError(f"not a ClickHouse cluster name: {self.cluster!r}")

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    def is_sharded(self, table: str) -> bool:
        return bool(self.cluster) and table in SHARDING_KEYS

    def stored_table(self, table: str) -> str:
        """The table that holds ``table``'s rows on each node."""
        return table + LOCAL_SUFFIX if self.is_sharded(table) else table

    def alter_target(self, table: str) -> str:
        """What follows ``ALTER TABLE`` to change ``table``'s stored rows or settings.

        A sharded table's local tables on every shard; an everywhere table without
        ``ON CLUSTER``, because Keeper already replicates an ALTER of a Replicated table
        to all its replicas, and ``ON CLUSTER`` would run it once per shard on top.
        """
        if self.is_sharded(table):
            return self.stored_table(table) + self.on_cluster
        return table

    @property
    def parts(self) -> str:
        """The table listing the parts of this deployment's tables: ``system.parts``, or on
        a cluster every replica's (filter it by ``database``: a remote node's current
        database is its own default)."""
        return f"clusterAllReplicas('{self.cluster}', system.parts)" if self.cluster \
            else "system.parts"

    @property
    def ddl_settings(self) -> dict[str, int]:
        """Settings for an ``ALTER`` sent ``ON CLUSTER`` that must finish before the call
        returns: a mutation over a large table runs for longer than the 180 s a server
        waits for every node by default, and the caller goes on only once it is done."""
        return {"distributed_ddl_task_timeout": DDL_TIMEOUT_SECONDS} if self.cluster else {}

    def engine(self, written: str, table: str) -> str:
        """The engine of ``table`` as its migration writes it, for this deployment."""
        if not self.cluster:
            return written
        match = _ENGINE.match(written.strip())
        if match is None:
            raise ConfigurationError(f"cannot replicate the engine {written!r}")
        name, arguments = match.group(1), match.group(2)
        if self.is_sharded(table):
            path = f"'/clickhouse/tables/{{shard}}/{{database}}/{self.stored_table(table)}', " \
                   "'{replica}'"
        else:
            # Every node is a replica: the replica name must be unique across shards too.
            path = f"'/clickhouse/tables/all/{{database}}/{table}', '{{shard}}-{{replica}}'"
        return f"Replicated{name}({path}{', ' + arguments if arguments else ''})"

    def distributed_engine(self, table: str) -> str:
        return (f"Distributed('{self.cluster}', '{self.database}', "
                f"'{self.stored_table(table)}', {SHARDING_KEYS[table]})")

    def layout(self, statement: str) -> list[str]:
        """The statements that do on this deployment what ``statement`` (rendered) does
        on one node."""
        if not self.cluster:
            return [statement]
        if created := _CREATE_TABLE.match(statement):
            return self._create_table(statement, created.group(2), bool(created.group(1)))
        if _CREATE_VIEW.match(statement):
            return [self._view_over_local_tables(statement)]
        if altered := _ALTER_TABLE.match(statement):
            return self._alter_table(statement, altered.group(1))
        if dropped := _DROP_TABLE.match(statement):
            return self._drop_table(statement, dropped.group(1))
        return [statement]

    def reading_distributed(self, select: str) -> str:
        """``select`` (a view's, as stored) reading the Distributed tables instead of one
        node's local ones: what a backfill must read to see every shard."""
        return _LOCAL_READ.sub(
            lambda match: match.group(1) if match.group(1) in SHARDING_KEYS
            else match.group(0), select)

    def _create_table(self, statement: str, table: str, if_missing: bool) -> list[str]:
        statement = _DEDUPLICATION_WINDOW.sub(_REPLICATED_DEDUPLICATION, statement)
        if not self.is_sharded(table):
            return [statement]
        local = _CREATE_TABLE.sub(
            lambda match: match.group(0)[:-len(table)] + self.stored_table(table),
            statement, count=1)
        local = _COPIED_COLUMNS.sub(
            lambda match: f"AS {self.database}.{self.stored_table(match.group(1))}"
                          f"{match.group(2)}", local, count=1)
        distributed = (f"CREATE TABLE {'IF NOT EXISTS ' if if_missing else ''}{table}"
                       f"{self.on_cluster} "
                       f"AS {self.database}.{self.stored_table(table)} "
                       f"ENGINE = {self.distributed_engine(table)}")
        return [local, distributed]

    def _view_over_local_tables(self, statement: str) -> str:
        statement = _VIEW_TARGET.sub(lambda match: "TO " + self.stored_table(match.group(1)),
                                     statement, count=1)
        return _READ_TABLE.sub(lambda match: match.group(1) + match.group(2)
                               + self.stored_table(match.group(3)), statement)

    def _alter_table(self, statement: str, table: str) -> list[str]:
        if not self.is_sharded(table):
            return [statement.replace(self.on_cluster, "", 1)]
        head = f"ALTER TABLE {table}{self.on_cluster}"
        if not statement.startswith(head):
            raise ConfigurationError(f"an ALTER of {table} on a cluster needs "
                                     "{{on_cluster}} after the table name")
        commands = _top_level_parts(statement[len(head):])
        local = f"ALTER TABLE {self.alter_target(table)}{statement[len(head):]}"
        column_changes = [bool(_COLUMN_COMMAND.match(command)) for command in commands]
        if not any(column_changes):
            return [local]
        if not all(column_changes):
            raise ConfigurationError(f"an ALTER of {table} mixes column changes with other "
                                     "commands: write them as two statements (on a cluster "
                                     "the Distributed table takes only the column changes)")
        return [local, statement]

    def _drop_table(self, statement: str, table: str) -> list[str]:
        # SYNC: a Replicated table's Keeper path is freed now, not minutes later, so a
        # migration can create the table again under the same name (0005 does).
        statements = [statement + " SYNC"]
        if self.is_sharded(table):
            statements.append(_DROP_TABLE.sub(
                lambda match: match.group(0) + LOCAL_SUFFIX, statement, count=1) + " SYNC")
        return statements


SINGLE_NODE = Deployment()


def _top_level_parts(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes, each part stripped."""
    parts, depth, quoted, start = [], 0, False, 0
    for index, character in enumerate(text):
        if character == "'":
            quoted = not quoted
        elif not quoted and character in "([":
            depth += 1
        elif not quoted and character in ")]":
            depth -= 1
        elif not quoted and depth == 0 and character == ",":
            parts.append(text[start:index].strip())
            start = index + 1
    parts.append(text[start:].strip())
    return [part for part in parts if part]

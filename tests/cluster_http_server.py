"""The ClickHouse HTTP fixture hosting the cluster layout: a cluster of one shard and one
replica, the fixture's own engine (test_cluster_operations.py, test_copy.py).

    python -m tests.cluster_http_server --port N --data DIR [--user U --password P]

The engine starts with ``tests.cluster_layout``'s configuration (the cluster
``analytics``, whose only replica is the engine itself), so Distributed tables,
``cluster()`` and ``clusterAllReplicas()`` run for real, over HTTP, for any client: the
collector's commands run against it as against a cluster, with
``COLLECTOR_CLICKHOUSE_CLUSTER=analytics``. What needs ClickHouse Keeper is taken out of
each statement before the engine sees it, exactly as ``tests.cluster_layout`` does
(``ON CLUSTER``, Replicated engines), and ``SYSTEM SYNC REPLICA`` answers at once (there
is no other replica to fetch from). Every statement received, as sent, is appended to
``statements.log`` beside DIR (one JSON string a line, ``statements_sent``), for the
tests to parse with ClickHouse's own parser and to read what went where.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.clickhouse_http_server import ClickHouseHttpServer, Connection, Engine, main
from tests.cluster_layout import CONFIG, without_keeper

STATEMENT_LOG = "statements.log"
CONFIG_FILE = "cluster-config.xml"
_SYNC_REPLICA = re.compile(r"^\s*SYSTEM SYNC REPLICA\b", re.IGNORECASE)
# A statement without a result that the engine runs at once, for SYSTEM SYNC REPLICA.
_NOTHING_TO_SYNC = "SELECT 1 WHERE 0"


class _StatementLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, sql: str) -> None:
        with self._lock, self.path.open("a") as log:
            log.write(json.dumps(sql) + "\n")


class _KeeperlessHandle:
    """An engine connection that logs each statement and runs it without Keeper's parts."""

    def __init__(self, handle: Any, log: _StatementLog) -> None:
        self._handle, self._log = handle, log

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        self._log.append(sql)
        run = _NOTHING_TO_SYNC if _SYNC_REPLICA.match(sql) else without_keeper(sql)
        return self._handle.query(run, *args, **kwargs)

    def send_insert(self, statement: str, data_format: str) -> Any:
        self._log.append(f"{statement} FORMAT {data_format}")  # as sent, before its data
        return self._handle.send_insert(without_keeper(statement), data_format)

    def close(self) -> None:
        self._handle.close()


class ClusterEngine(Engine):
    """The fixture's engine, configured as the one node of the cluster ``analytics``."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._config = data_dir.parent / CONFIG_FILE
        self._config.write_text(CONFIG)
        self._statements = _StatementLog(data_dir.parent / STATEMENT_LOG)
        super().__init__(data_dir)

    def open(self) -> Connection:
        import chdb  # only the fixture process loads the engine

        target = f"{self._data_dir}?{urlencode({'config-file': str(self._config)})}"
        with self._opening:
            return Connection(_KeeperlessHandle(chdb.connect(target), self._statements))


class ClusterHttpServer(ClickHouseHttpServer):
    """``ClickHouseHttpServer`` running this module: the cluster layout over HTTP."""

    module = "tests.cluster_http_server"

    @property
    def statement_log(self) -> Path:
        return self.data_dir.parent / STATEMENT_LOG

    def statements_sent(self) -> list[str]:
        """Every statement received so far, as the client sent it."""
        if not self.statement_log.is_file():
            return []
        return [json.loads(line) for line in self.statement_log.read_text().splitlines()]


if __name__ == "__main__":
    main(engine_class=ClusterEngine)

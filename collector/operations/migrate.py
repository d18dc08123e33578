"""Operation ``migrate.apply``: pending schema migrations, and the migrations applied."""

from __future__ import annotations

from typing import Any

from collector.operations import OperationContext, operation
from collector.storage import migrate
from collector.storage.cluster import Deployment


@operation("migrate.apply")
def apply(context: OperationContext) -> dict[str, Any]:
    """Every applied migration with when it was applied (ms since the epoch).

    The runner migrates a store before any operation runs on it (and a running server
    did at startup), so what this call applied is told by the times, not by its own
    return value: a caller compares them with when it started.
    """
    migrate(context.store, context.settings.retention_months,
            Deployment(context.settings.clickhouse_cluster))
    rows = context.store.rows(
        "SELECT version, name, applied_ms FROM schema_migrations FINAL ORDER BY version")
    return {"migrations": [{"version": version, "name": name, "applied_ms": applied_ms}
                           for version, name, applied_ms in rows]}

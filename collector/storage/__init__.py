"""Storage: the only package that imports ``clickhouse_connect``."""

from collector.storage.client import LOCK_FILE_NAME, QueryLimits, Store, open_store
from collector.storage.migrations import applied_versions, apply_retention, migrate

__all__ = ["LOCK_FILE_NAME", "QueryLimits", "Store", "apply_retention", "applied_versions",
           "migrate", "open_store"]

"""Run an operation by name on the configured store.

Temporary version (the CLI rewrite needs it before the admin channel lands): it only
runs operations directly, on a store opened and migrated here, so with the embedded
engine it still refuses (DataDirectoryBusy) while ``collector serve`` owns the data
directory. The admin channel replaces this module with one that sends the call to
the running server instead.
"""

from __future__ import annotations

from typing import Any, BinaryIO

from collector.errors import NotFound
from collector.operations import OperationContext, Progress, load_operations
from collector.settings import Settings
from collector.storage import migrate, open_store


def run_operation(settings: Settings, name: str, params: dict[str, Any], *,
                  progress: Progress | None = None, output: BinaryIO | None = None) -> Any:
    """The result of operation ``name`` called with ``params``."""
    function = load_operations().get(name)
    if function is None:
        raise NotFound(f"no operation {name!r}", "operation")
    store = open_store(settings.store_url)
    try:
        migrate(store, settings.retention_months)
        context = OperationContext(store, settings, output=output)
        if progress is not None:
            context.progress = progress
        return function(context, **params)
    finally:
        store.close()

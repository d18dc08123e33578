"""Run an operation by name: here on the configured store, or in the server that owns it.

With a ClickHouse server (``http(s)://``) the store is always opened here: any
number of processes may use it. With the embedded engine, opening fails with
DataDirectoryBusy while ``collector serve`` owns the data directory; the call
then goes to that server over its admin channel (``collector.operations.channel``)
and runs there, with the server's settings, on the server's store.
"""

from __future__ import annotations

import json
import logging
from typing import Any, BinaryIO

from collector.errors import DataDirectoryBusy, NotFound
from collector.operations import OperationContext, Progress, load_operations
from collector.operations.channel import call_server, socket_path
from collector.settings import Settings
from collector.storage import migrate, open_store
from collector.storage.cluster import Deployment

logger = logging.getLogger("collector.operations")


def run_operation(settings: Settings, name: str, params: dict[str, Any], *,
                  progress: Progress | None = None, output: BinaryIO | None = None,
                  notes: list[str] | None = None) -> Any:
    """The result of operation ``name`` called with ``params``, wherever it ran.

    ``progress`` and ``output`` receive what the operation reports and writes, also
    from a server. Its notes (warnings for the operator) are appended to ``notes``
    when given, else logged as warnings.
    """
    function = load_operations().get(name)
    if function is None:
        raise NotFound(f"no operation {name!r}", "operation")
    keep_note = notes.append if notes is not None else logger.warning
    try:
        store = open_store(settings.store_url)
    except DataDirectoryBusy as busy:
        if not socket_path(settings).is_socket():
            # Not a server that takes commands (or not yet): the owner as storage names it.
            raise DataDirectoryBusy(
                f"{busy} (it has no admin channel {socket_path(settings)} to send the command "
                "to; a server still starting opens it in a moment)") from None
        return call_server(settings, name, params, progress=progress, output=output,
                           notes=keep_note)
    try:
        migrate(store, settings.retention_months, Deployment(settings.clickhouse_cluster))
        context = OperationContext(store, settings, output=output)
        if progress is not None:
            context.progress = progress
        try:
            result = function(context, **params)
        finally:
            for note in context.notes:
                keep_note(note)
        # Through JSON as over the channel: the caller gets the same values either way.
        return json.loads(json.dumps(result))
    finally:
        store.close()

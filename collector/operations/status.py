"""``server.status``: who answers, since when, on which store, with what waiting to be written."""

from __future__ import annotations

import os
import time
from typing import Any

from collector import __version__
from collector.operations import OperationContext, operation
from collector.operations.channel import socket_path
from collector.settings import redacted_url
from collector.wal import segments_on_disk


@operation("server.status")
def status(context: OperationContext) -> dict[str, Any]:
    """The running server's state when it answered, else this process's view of the store."""
    state = context.server_state
    in_server = state is not None
    return {
        "ran_in": "server" if in_server else "direct",
        "pid": os.getpid(),
        "version": __version__,
        "uptime_seconds": round(time.time() - state.started_at, 1) if in_server else None,
        "store": redacted_url(context.store.url),
        "embedded": context.store.embedded,
        "admin_socket": str(socket_path(context.settings)) if in_server else None,
        # Without a server nothing is buffered in memory; the write-ahead log waits for one.
        "buffered_rows": state.writer.buffered_rows if in_server else 0,
        "spooled_batches": (state.writer.spooled_batches if in_server
                            else segments_on_disk(context.settings.wal_path)),
    }

"""Operator commands as library functions, runnable here or inside a running server.

Every command the CLI offers that touches the store is an *operation*: a
function ``(context, **params) -> result`` registered by name, whose params and
result are plain JSON values (str, int, float, bool, None, lists, dicts). The
CLI only parses options, calls ``run_operation`` and prints the result (or its
JSON with ``--json``).

``run_operation`` runs the function on a store opened here, or, when the
embedded data directory is owned by a running ``collector serve``, sends it to
that server over its admin channel (``collector.operations.channel``), which
runs the same function on its own store. Either way the function is the same,
so a command works identically with the server stopped or running.

Long operations report progress through ``context.progress(done, total, label)``;
operations that produce a stream (export to stdout) write bytes to
``context.output``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from collector.settings import Settings
from collector.storage import Store
from collector.storage.cluster import Deployment

Progress = Callable[[int, int, str], None]


def _no_progress(done: int, total: int, label: str) -> None:
    pass


@dataclass
class OperationContext:
    """What an operation may use: the store, the settings, progress and an output stream."""

    store: Store
    settings: Settings
    progress: Progress = _no_progress
    output: BinaryIO | None = None
    # Set when the operation runs inside `collector serve`: the app's state, for
    # operations that must also update what the running server holds in memory.
    server_state: Any = None
    notes: list[str] = field(default_factory=list)  # one-line warnings for the operator

    @property
    def deployment(self) -> Deployment:
        return store_deployment(self.store, self.settings)


def store_deployment(store: Store, settings: Settings) -> Deployment:
    """Where ``store``'s tables live: one node, or ``COLLECTOR_CLICKHOUSE_CLUSTER``'s."""
    return Deployment(settings.clickhouse_cluster, store.database)


Operation = Callable[..., Any]
OPERATIONS: dict[str, Operation] = {}


def operation(name: str) -> Callable[[Operation], Operation]:
    """Register ``function`` under ``name`` ("sites.add"), the name the admin channel uses."""

    def register(function: Operation) -> Operation:
        if name in OPERATIONS:
            raise ValueError(f"operation {name!r} registered twice")
        OPERATIONS[name] = function
        return function

    return register


# Modules whose operations register on import; add yours here.
OPERATION_MODULES: tuple[str, ...] = ("status", "sites", "keys", "thresholds", "share_privacy",
                                     "goals",
                                     "salts", "demo", "migrate", "export", "compliance",
                                     "retention", "erase", "audit", "copy")


def load_operations() -> dict[str, Operation]:
    """Every registered operation (importing the modules that register them)."""
    import importlib

    for module in OPERATION_MODULES:
        importlib.import_module(f"collector.operations.{module}")
    return OPERATIONS

"""Operations that exist only for the admin channel's tests, registered on import.

The test server and the test clients both import this module: the server to run
them, the clients because ``run_operation`` only sends names it knows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from collector.errors import CollectorError, InvalidField
from collector.operations import OperationContext, operation

WAIT_LIMIT_SECONDS = 60.0


def pattern(size: int) -> bytes:
    """``size`` bytes repeating every 251 (a prime): chunk boundaries never line up with it."""
    return (bytes(range(251)) * (size // 251 + 1))[:size]


@operation("test.fail")
def fail(context: OperationContext, reason: str, field: str | None = None) -> None:
    raise InvalidField(reason, field)


@operation("test.crash")
def crash(context: OperationContext) -> None:
    raise RuntimeError("a bug in an operation")


@operation("test.count")
def count(context: OperationContext, up_to: int, pause: float = 0.0) -> int:
    for done in range(up_to + 1):
        context.progress(done, up_to, "counting")
        time.sleep(pause)
    return up_to


@operation("test.stream")
def stream(context: OperationContext, size: int) -> dict[str, Any]:
    if context.output is None:
        raise CollectorError("no output to write to")
    data = pattern(size)
    for start in range(0, size, 10_000):  # many small writes, as an export makes them
        context.output.write(data[start:start + 10_000])
    return {"written": size}


@operation("test.notes")
def notes(context: OperationContext, lines: list[str]) -> str:
    context.notes.extend(lines)
    return "noted"


@operation("test.where")
def where(context: OperationContext) -> dict[str, Any]:
    """Where the operation ran, and whether its store is a connection of its own."""
    state = context.server_state
    return {"in_server": state is not None,
            "own_connection": state is None or context.store is not state.store,
            "answers": context.store.rows("SELECT 1")[0][0]}


@operation("test.wait")
def wait(context: OperationContext, started: str, release: str) -> str:
    """Say it runs (create ``started``), then hold on until ``release`` exists."""
    Path(started).touch()
    deadline = time.monotonic() + WAIT_LIMIT_SECONDS
    while not Path(release).exists():
        if time.monotonic() > deadline:
            raise CollectorError("never released")
        time.sleep(0.05)
    return "released"

"""The disk spool: batches ClickHouse could not take wait here instead of in memory.

When an insert fails (the store is down, or the collector is shutting down
before it came back), the writer saves the batch to one file per batch,
written to a temporary name, fsynced and renamed, so a crash never leaves half
a batch. The writer replays spooled files oldest first with their original
deduplication tokens: a batch that did reach ClickHouse before the failure is
not stored twice. Spooled rows are ``Event`` rows and visit rows: no IP
address, no raw user agent, no query string can be in them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec

from collector.errors import SpoolFull

SUFFIX = ".batch"


class SpooledBatch(msgspec.Struct):
    token: str
    rows: dict[str, list[list[Any]]]
    written_tables: list[str] = []


class Spool:
    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(SpooledBatch)
        directory.mkdir(parents=True, exist_ok=True)
        for leftover in directory.glob("*.tmp"):
            leftover.unlink()  # a crash mid-write: its batch was still in memory, not accepted

    def save(self, batch: SpooledBatch) -> Path:
        payload = self._encoder.encode(batch)
        if self.size_bytes() + len(payload) > self.max_bytes:
            raise SpoolFull(f"the spool in {self.directory} is full ({self.max_bytes} bytes)")
        final = self.directory / f"{time_ordered_name(batch.token)}{SUFFIX}"
        temporary = final.with_suffix(".tmp")
        with temporary.open("wb") as output:
            output.write(payload)
            output.flush()
            os.fsync(output.fileno())
        temporary.rename(final)
        return final

    def files(self) -> list[Path]:
        """Spooled batches, oldest first."""
        return sorted(self.directory.glob(f"*{SUFFIX}"))

    def load(self, path: Path) -> SpooledBatch:
        return self._decoder.decode(path.read_bytes())

    def update(self, path: Path, batch: SpooledBatch) -> None:
        """Record progress (tables already written) so a replay does not redo them."""
        temporary = path.with_suffix(".tmp")
        temporary.write_bytes(self._encoder.encode(batch))
        temporary.rename(path)

    def size_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.directory.glob(f"*{SUFFIX}"))


def time_ordered_name(token: str) -> str:
    return f"{time.time_ns():020d}-{token}"

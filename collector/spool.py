"""The disk spool of versions before the write-ahead log, read once to empty it.

Those versions saved each batch ClickHouse could not take as one msgpack file
(``*.batch``, with its deduplication token) in ``COLLECTOR_SPOOL_DIR``. The
write-ahead log (``collector.wal``) now keeps every batch until it is written, so
nothing is spooled any more: at startup ``wal.open_log`` moves the batches found
here into the log, tokens kept, and they are replayed with the rest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

SUFFIX = ".batch"


class SpooledBatch(msgspec.Struct):
    token: str
    rows: dict[str, list[list[Any]]]
    written_tables: list[str] = []  # the replay's tokens make redoing these harmless


def spooled_batches(directory: Path) -> Iterator[tuple[Path, SpooledBatch]]:
    """The batches spooled in ``directory``, oldest first (none when it does not exist).

    Also removes the empty ``.tmp`` files those versions left behind when a save failed.
    """
    if not directory.is_dir():
        return
    for leftover in directory.glob("*.tmp"):
        leftover.unlink()
    decoder = msgspec.msgpack.Decoder(SpooledBatch)
    for path in sorted(directory.glob(f"*{SUFFIX}")):
        yield path, decoder.decode(path.read_bytes())

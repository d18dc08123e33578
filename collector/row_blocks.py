"""Rows as ClickHouse reads them: a table's rows encoded once, at ingest, in ``MsgPack`` format.

A ``RowBlock`` is rows of one table as ClickHouse's ``MsgPack`` input format takes them:
every value of every row, one after the other, with no framing. Each request's rows are
encoded once, when they are accepted; that same block is the request's record in the
write-ahead log and, joined with the others of its batch, the body of the insert. So the
writer's thread does no Python work per row (which would hold the GIL the event loop
needs), ClickHouse parses binary instead of text, and a batch waits in memory as bytes,
not as tuples the garbage collector walks.

Values are the rows' own: DateTime64 columns take integer ticks (milliseconds for
``DateTime64(3)``) and DateTime columns integer seconds, as the format defines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import chain
from typing import Any, NamedTuple

import msgspec

_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(list[Any])
# A msgpack array's header: one byte up to 15 items, then 3 (array 16) or 5 (array 32).
_ARRAY_16, _ARRAY_32 = 0xDC, 0xDD


class RowBlock(NamedTuple):
    rows: int
    width: int  # values per row: checked against the table's columns before an insert
    data: bytes


def encode_rows(rows: Sequence[Sequence[Any]]) -> RowBlock:
    """``rows`` (all of one width) as a block."""
    if not rows:
        return RowBlock(0, 0, b"")
    flat = _ENCODER.encode(tuple(chain.from_iterable(rows)))
    header = 3 if flat[0] == _ARRAY_16 else 5 if flat[0] == _ARRAY_32 else 1
    return RowBlock(len(rows), len(rows[0]), flat[header:])


def joined(blocks: Iterable[RowBlock]) -> RowBlock:
    """One block of the rows of ``blocks``, in order (all of one width)."""
    blocks = [block for block in blocks if block.rows]
    if not blocks:
        return RowBlock(0, 0, b"")
    if len(blocks) == 1:
        return blocks[0]
    return RowBlock(sum(block.rows for block in blocks), blocks[0].width,
                    b"".join(block.data for block in blocks))


def decoded(block: RowBlock) -> list[list[Any]]:
    """The rows of ``block`` (tests and tools; never on the ingest path)."""
    values = block.rows * block.width
    header = (bytes([0x90 | values]) if values < 16
              else bytes([_ARRAY_16]) + values.to_bytes(2, "big") if values < 1 << 16
              else bytes([_ARRAY_32]) + values.to_bytes(4, "big"))
    flat = _DECODER.decode(header + block.data)
    return [flat[start:start + block.width] for start in range(0, values, block.width)]

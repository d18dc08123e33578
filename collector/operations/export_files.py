"""The files of ``collector export``: each format written block by block, and read back.

A raw export holds the ``events`` and ``visits`` rows of one site and date range:

- ``jsonl``: one file. A header line ``{"collector_export": 1, "kind": "raw", ...}``,
  then one object per row: ``"table"`` ("events" or "visits") and every column of
  that table, times as RFC 3339 in the site's timezone, arrays as JSON arrays.
- ``csv``: one file per table (``out.events.csv``, ``out.visits.csv``), a header row
  of the table's columns; arrays as JSON text in their cell. A text cell that a
  spreadsheet would run as a formula (``= + - @``, tab, carriage return) gets a
  leading ``'``, and so does one that starts with ``'`` itself, so that import can
  remove exactly one and get the value back.
- ``parquet``: one file per table; times as ``timestamp[ms]`` in the site's timezone,
  the header in the file metadata under ``collector_export``.

Reading checks every row against the declared columns (``collector.schema``): a
column that is not declared is refused, so an import cannot store anything the
collector itself would not (an address, a user agent, a query string).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from collector.errors import InvalidField
from collector.reports.csv import FORMULA_PREFIXES, LINE_END, spreadsheet_safe
from collector.schema import TABLES, Column, column_names

EXPORT_VERSION = 1
HEADER_KEY = "collector_export"
# Quoted in CSV cells: a quote in front of these is removed again on import.
QUOTED_PREFIXES = (*FORMULA_PREFIXES, "'")
PARQUET_MAGIC = b"PAR1"
ROW_GROUP_ROWS = 65_536
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_JSON = msgspec.json.Encoder()


def _value_type(column: Column) -> Any:
    """The Python type an imported value of ``column`` must have, with its range."""
    kind = column.type
    if kind.startswith("DateTime64"):
        return Annotated[datetime, msgspec.Meta(tz=True)]  # an instant, never a local time
    if kind == "Array(String)":
        return list[str]
    if kind in ("String", "LowCardinality(String)"):
        return str
    bits = int(kind.removeprefix("U").removeprefix("Int"))
    if kind.startswith("U"):
        # msgspec itself refuses integers past 64 bits, and takes no bound beyond them.
        return Annotated[int, msgspec.Meta(ge=0, lt=2 ** bits) if bits < 64
                         else msgspec.Meta(ge=0)]
    # le, not lt: msgspec takes only bounds that are themselves 64-bit integers (Int64).
    return Annotated[int, msgspec.Meta(ge=-(2 ** (bits - 1)), le=2 ** (bits - 1) - 1)]


# One row of each table as import reads it: the declared columns, no other field.
ROW_TYPES = {table: msgspec.defstruct(
    table, [(column.name, _value_type(column)) for column in columns],
    tag_field="table", tag=table, forbid_unknown_fields=True)
    for table, columns in TABLES.items()}
_ROW = msgspec.json.Decoder(ROW_TYPES["events"] | ROW_TYPES["visits"])


def _arrow_type(column: Column, timezone: str) -> Any:
    if column.type.startswith("DateTime64"):
        return pa.timestamp("ms", tz=timezone)
    if column.type == "Array(String)":
        return pa.list_(pa.string())
    if column.type in ("String", "LowCardinality(String)"):
        return pa.string()
    return pa.from_numpy_dtype(column.type.lower())


def arrow_schema(table: str, timezone: str) -> Any:
    return pa.schema([pa.field(column.name, _arrow_type(column, timezone), nullable=False)
                      for column in TABLES[table]])


def time_columns(table: str) -> list[int]:
    """Positions of the table's DateTime64 columns (held as milliseconds to insert)."""
    return [index for index, column in enumerate(TABLES[table])
            if column.type.startswith("DateTime64")]


# ---- writing -------------------------------------------------------------------------

def jsonl_header(header: dict[str, Any]) -> bytes:
    return _JSON.encode({HEADER_KEY: EXPORT_VERSION, **header}) + b"\n"


def csv_row(cells: Sequence[Any]) -> bytes:
    """One CSV line, text cells quoted as the export's CSV quotes them (see above)."""
    buffer = io.StringIO()
    # CRLF: a CR inside a cell is then quoted, never a line break to a spreadsheet.
    csv.writer(buffer, lineterminator=LINE_END).writerow([_csv_cell(cell) for cell in cells])
    return buffer.getvalue().encode()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] == "'":
        return "'" + value
    return spreadsheet_safe(value)


class ParquetSink:
    """Row groups appended to one Parquet file as blocks of columns arrive.

    Blocks become Arrow arrays at once (compact, unlike Python values) and are written
    as a row group once ``ROW_GROUP_ROWS`` have gathered: readers want row groups far
    larger than the blocks ClickHouse streams.
    """

    def __init__(self, stream: BinaryIO, schema: Any, header: dict[str, Any]) -> None:
        metadata = {HEADER_KEY.encode(): json.dumps({HEADER_KEY: EXPORT_VERSION, **header})}
        self._schema = schema.with_metadata(metadata)
        # Written through, never seeked: a pipe or the admin channel will do.
        self._writer = pq.ParquetWriter(pa.PythonFile(stream, mode="w"), self._schema,
                                        compression="zstd")
        self._pending: list[Any] = []
        self._pending_rows = 0

    def write(self, columns: Sequence[Sequence[Any]]) -> None:
        arrays = [pa.array(values, type=field.type)
                  for values, field in zip(columns, self._schema)]
        self._pending.append(pa.Table.from_arrays(arrays, schema=self._schema))
        self._pending_rows += len(columns[0]) if columns else 0
        if self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.concat_tables(self._pending),
                                     row_group_size=max(ROW_GROUP_ROWS, self._pending_rows))
        self._pending, self._pending_rows = [], 0


class RecordWriter:
    """Rows of one table (the aggregate export) appended in any format, with its header."""

    def __init__(self, format_name: str, stream: BinaryIO, names: Sequence[str],
                 schema: Any, header: dict[str, Any]) -> None:
        self._format = format_name
        self._stream = stream
        self._names = tuple(names)
        self._parquet = ParquetSink(stream, schema, header) if format_name == "parquet" \
            else None
        if format_name == "jsonl":
            stream.write(jsonl_header(header))
        elif format_name == "csv":
            stream.write(csv_row(self._names))

    def write(self, rows: Sequence[Sequence[Any]]) -> None:
        if self._format == "jsonl":
            self._stream.write(_JSON.encode_lines([dict(zip(self._names, row))
                                                   for row in rows]))
        elif self._format == "csv":
            self._stream.write(b"".join(csv_row(row) for row in rows))
        elif self._parquet is not None and rows:
            self._parquet.write([list(column) for column in zip(*rows)])

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()


# ---- reading -------------------------------------------------------------------------

@dataclass
class Batch:
    """Rows of one table ready to insert (times in milliseconds), and how far the file
    has been read, in bytes."""

    table: str
    columns: list[list[Any]]
    position: int


def read_export(path: Path, batch_rows: int) -> Iterator[Batch]:
    """The rows of one export file, in batches of at most ``batch_rows`` per table."""
    with path.open("rb") as file:
        start = file.read(len(PARQUET_MAGIC))
        file.seek(0)
        if start == PARQUET_MAGIC:
            yield from _parquet_batches(path, file, batch_rows)
        elif start[:1] == b"{":
            yield from _batched(_jsonl_rows(path, file), batch_rows)
        else:
            yield from _batched(_csv_rows(path, file), batch_rows)


def _refused(path: Path, where: str, reason: str) -> InvalidField:
    return InvalidField(f"{path}: {where}: {reason}", "file")


def _check_header(path: Path, header: dict[str, Any], where: str) -> None:
    if header.get(HEADER_KEY) != EXPORT_VERSION:
        raise _refused(path, where, f"not a collector export (version {EXPORT_VERSION})")
    if header.get("kind") != "raw":
        raise _refused(path, where, "an aggregate export holds no rows to import")


_Row = tuple[str, tuple[Any, ...], int]  # table, values in column order, bytes read


def _jsonl_rows(path: Path, file: BinaryIO) -> Iterator[_Row]:
    position = 0
    for number, line in enumerate(file, start=1):
        position += len(line)
        if number == 1:
            try:
                header = msgspec.json.decode(line)
            except msgspec.DecodeError as error:
                raise _refused(path, "line 1", str(error)) from None
            _check_header(path, header if isinstance(header, dict) else {}, "line 1")
            continue
        if not line.strip():
            continue
        try:
            row = _ROW.decode(line)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise _refused(path, f"line {number}", str(error)) from None
        yield type(row).__name__, _stored(row), position


def _csv_rows(path: Path, file: BinaryIO) -> Iterator[_Row]:
    counted = _CountedLines(file)
    reader = csv.reader(counted)
    names = tuple(next(reader, []))
    table = next((name for name in TABLES if column_names(name) == names), None)
    if table is None:
        raise _refused(path, "line 1", "the header is not the columns of events or visits "
                                       "(an aggregate export holds no rows to import)")
    row_type = ROW_TYPES[table]
    lists = [column.name for column in TABLES[table] if column.type == "Array(String)"]
    for cells in reader:
        values: dict[str, Any] = {name: _unquoted(cell) for name, cell in zip(names, cells)}
        try:
            if len(cells) != len(names):
                raise msgspec.ValidationError(f"{len(cells)} cells, {len(names)} columns")
            for name in lists:
                values[name] = msgspec.json.decode(values[name])
            row = msgspec.convert(values, row_type, strict=False)
        except (msgspec.ValidationError, msgspec.DecodeError) as error:
            raise _refused(path, f"line {reader.line_num}", str(error)) from None
        yield table, _stored(row), counted.position


def _unquoted(cell: str) -> str:
    return cell[1:] if cell[:1] == "'" else cell


class _CountedLines:
    """Decoded lines of a binary file, counting the bytes read (for progress)."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self.position = 0

    def __iter__(self) -> Iterator[str]:
        for line in self._file:
            self.position += len(line)
            yield line.decode()


def _stored(row: Any) -> tuple[Any, ...]:
    """A decoded row's values as inserted: instants become milliseconds."""
    return tuple((value - _EPOCH) // _MILLISECOND if isinstance(value, datetime) else value
                 for value in msgspec.structs.astuple(row))


def _batched(rows: Iterator[_Row], batch_rows: int) -> Iterator[Batch]:
    pending: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TABLES}
    position = 0
    for table, values, position in rows:
        pending[table].append(values)
        if len(pending[table]) >= batch_rows:
            yield Batch(table, [list(column) for column in zip(*pending[table])], position)
            pending[table] = []
    for table, left in pending.items():
        if left:
            yield Batch(table, [list(column) for column in zip(*left)], position)


def _parquet_batches(path: Path, file: BinaryIO, batch_rows: int) -> Iterator[Batch]:
    try:
        parquet = pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as error:
        raise _refused(path, "file", f"not a Parquet file ({error})") from None
    schema = parquet.schema_arrow
    header = json.loads((schema.metadata or {}).get(HEADER_KEY.encode(), b"{}"))
    _check_header(path, header, "metadata")
    table = header.get("table")
    if table not in TABLES or tuple(schema.names) != column_names(table):
        raise _refused(path, "schema", "the columns are not those of events or visits")
    expected = arrow_schema(table, "UTC")
    size = max(1, path.stat().st_size)
    groups = max(1, parquet.num_row_groups)
    for index in range(parquet.num_row_groups):
        for batch in parquet.iter_batches(batch_size=batch_rows, row_groups=[index]):
            yield Batch(table, _parquet_columns(path, batch, expected),
                        size * (index + 1) // groups)


def _parquet_columns(path: Path, batch: Any, expected: Any) -> list[list[Any]]:
    columns: list[list[Any]] = []
    for field, array in zip(expected, batch.columns):
        if array.null_count:
            raise _refused(path, field.name, "empty values (nulls) are not allowed")
        try:
            # Times as milliseconds since the epoch, whatever zone the file shows them in.
            typed = array.cast(field.type)
            if pa.types.is_timestamp(field.type):
                typed = typed.cast(pa.int64())
        except (pa.ArrowException, ValueError) as error:
            raise _refused(path, field.name, f"not {field.type} ({error})") from None
        columns.append(typed.to_pylist())
    return columns

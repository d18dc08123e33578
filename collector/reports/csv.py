"""CSV rendering of a report: one header line, then one line per result row, streamed."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from starlette.requests import Request


def wants_csv(request: Request) -> bool:
    """``Accept: text/csv`` or ``?format=csv``."""
    if request.query_params.get("format", "").lower() == "csv":
        return True
    return "text/csv" in request.headers.get("accept", "").lower()


def csv_lines(dimensions: tuple[str, ...], metrics: tuple[str, ...],
              results: list[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    yield _line(buffer, writer, [*dimensions, *metrics])
    for row in results:
        yield _line(buffer, writer, [*map(spreadsheet_safe, row["dimensions"]), *row["metrics"]])


# A cell starting with one of these is run as a formula by spreadsheet programs
# (tab and carriage return too, once the program strips them).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """``value``, with a quote in front when a spreadsheet would run it as a formula."""
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        return "'" + value
    return value


def _line(buffer: io.StringIO, writer: Any, cells: list[Any]) -> str:
    buffer.seek(0)
    buffer.truncate()
    writer.writerow(cells)
    return buffer.getvalue()

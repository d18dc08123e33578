"""CSV rendering of a report: one header line, then one line per result row, streamed.

The text in a report comes from visitors (a campaign tag, a page, a property), and
CSV files are opened in spreadsheets. Lines end in ``\\r\\n`` and any cell holding a
comma, a quote, a CR or an LF is quoted (RFC 4180), so a value never starts a line
of its own; a text cell a spreadsheet would run as a formula gets a leading ``'``
(OWASP's rule for CSV injection). Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

from starlette.requests import Request

LINE_END = "\r\n"
# A cell starting with one of these is run as a formula by spreadsheet programs
# (tab and carriage return too, once the program strips them).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(request: Request) -> bool:
    """``Accept: text/csv`` or ``?format=csv``."""
    if request.query_params.get("format", "").lower() == "csv":
        return True
    return "text/csv" in request.headers.get("accept", "").lower()


def csv_lines(dimensions: tuple[str, ...], metrics: tuple[str, ...],
              results: list[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=LINE_END)
    yield _line(buffer, writer, [*dimensions, *metrics])
    for row in results:
        yield _line(buffer, writer, [*row["dimensions"], *map(_metric_cell, row["metrics"])])


def _metric_cell(value: Any) -> Any:
    """A metric's number: a revenue metric is an object (value, currency, short, long)."""
    return value["value"] if isinstance(value, dict) else value


def spreadsheet_safe(value: Any) -> Any:
    """``value``, with a quote in front when a spreadsheet would run it as a formula."""
    if isinstance(value, str) and value[:1] in FORMULA_PREFIXES:
        return "'" + value
    return value


def _line(buffer: io.StringIO, writer: Any, cells: Iterable[Any]) -> str:
    buffer.seek(0)
    buffer.truncate()
    writer.writerow([spreadsheet_safe(cell) for cell in cells])
    return buffer.getvalue()

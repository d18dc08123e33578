"""CSV that a spreadsheet opens as data: the issue's campaign tags, sent through ingest.

A visitor's ``utm_source=%0D%3D3%2B4`` came out of a CSV export as an unquoted CR
and then a line ``=3+4``, which a spreadsheet runs as a formula; ``\\t=1+2`` was not
neutralised either. Each answer here is parsed back with Python's csv module and
checked cell by cell: text from visitors quoted where needed and led by ``'`` when
it starts like a formula, numbers left as numbers, lines ending in CRLF.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from collector.operations import OperationContext
from collector.operations import export as exporting
from collector.reports.auth import create_key
from collector.reports.csv import FORMULA_PREFIXES, csv_lines
from collector.settings import Settings
from collector.storage import Store, migrate, open_store
from tests.conftest import CHROME_UA, flush, fresh_database_name, running_app

SITE = "csv.example"
# The two values, and the other starts OWASP names; the last two are harmless.
HOSTILE = ["\r=3+4", "\t=1+2", "=HYPERLINK(\"http://x\")", "+1+2", "-2+3", "@SUM(A1)",
           "a,b \"c\"", "plain"]


def today() -> str:
    return datetime.now(UTC).date().isoformat()


@pytest.fixture(scope="module")
def client(store: Store, engine_url: str) -> Iterator[TestClient]:
    with running_app(store, engine_url) as running:
        for index, value in enumerate(HOSTILE):
            response = running.post("/api/event", json={
                "n": "pageview", "d": SITE,
                "u": f"https://{SITE}/landing?utm_source={quote(value, safe='')}"},
                headers={"User-Agent": f"{CHROME_UA} visitor/{index}"})
            assert response.status_code == 202
        flush(running)
        yield running


@pytest.fixture(scope="module")
def key(store: Store) -> str:
    return create_key(store, SITE)


def parsed(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_report_csv_neutralises_visitors_text_and_keeps_numbers(client: TestClient,
                                                                key: str) -> None:
    body = {"site_id": SITE, "date_range": [today(), today()],
            "metrics": ["visitors", "pageviews", "bounce_rate"],
            "dimensions": ["visit:utm_source"], "order_by": [["visit:utm_source", "asc"]]}
    response = client.post("/api/v2/query", json=body, headers={
        "Authorization": f"Bearer {key}", "Accept": "text/csv"})
    assert response.status_code == 200
    text = response.text
    assert text.endswith("\r\n") and text.count("\r\n") == 1 + len(HOSTILE)
    header, *rows = parsed(text)
    assert header == ["visit:utm_source", "visitors", "pageviews", "bounce_rate"]
    # Numbers as numbers: no quote, no prefix.
    assert rows == [[_exported(value), "1", "1", "100"] for value in sorted(HOSTILE)]
    # The value: one quoted cell, its CR inside the quotes, not a line break.
    assert "\r\n\"'\r=3+4\",1,1,100\r\n" in text
    assert "\r\n'\t=1+2,1,1,100\r\n" in text


def test_drops_csv_lines_end_in_crlf(client: TestClient, key: str) -> None:
    response = client.post("/api/v2/drops?format=csv", json={
        "site_id": SITE, "date_range": [today(), today()]},
        headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    lines = response.text.split("\r\n")
    assert lines[0] == "reason,count" and lines[-1] == ""
    assert all(row[1].isdigit() for row in parsed(response.text)[1:])


def test_every_cell_of_a_report_line_is_checked() -> None:
    # Dimension values anywhere in the row and header names alike; numbers untouched.
    lines = list(csv_lines(("visit:utm_source", "visit:utm_medium"), ("visitors", "events"),
                           [{"dimensions": ["=1", "\r-2"], "metrics": [-3, 0.5]},
                            {"dimensions": [None, "@x"], "metrics": [None, 2]}]))
    assert lines == ["visit:utm_source,visit:utm_medium,visitors,events\r\n",
                     "'=1,\"'\r-2\",-3,0.5\r\n", ",'@x,,2\r\n"]


def test_the_operators_csv_export_is_neutralised_and_imports_back(
        client: TestClient, store: Store, engine_url: str, tmp_path: Path) -> None:
    settings = Settings.from_env({})
    result = exporting.export(OperationContext(store, settings), site=SITE, format="csv",
                              from_date=today(), to_date=today(),
                              output=str(tmp_path / "site.csv"))
    events_file = next(name for name in result["files"] if name.endswith(".events.csv"))
    raw = Path(events_file).read_bytes().decode()
    assert raw.endswith("\r\n")
    header, *rows = parsed(raw)
    sources = sorted(row[header.index("utm_source")] for row in rows)
    assert len(sources) == len(HOSTILE)
    for cell, value in zip(sources, sorted(_exported(value) for value in HOSTILE)):
        assert cell == value and cell[:1] not in FORMULA_PREFIXES
    target = open_store(engine_url, fresh_database_name("csv import"))
    migrate(target)
    exporting.import_files(OperationContext(target, settings), result["files"])
    assert sorted(value for (value,) in target.rows("SELECT utm_source FROM events")) == \
        sorted(HOSTILE)


def _exported(value: str) -> Any:
    return "'" + value if value[:1] in FORMULA_PREFIXES else value

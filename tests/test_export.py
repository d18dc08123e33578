"""Export and import on the real engine: round trips in every format, streaming, the daily
reports, CSV cells a spreadsheet would run, and what an import refuses."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest

from collector.cli import data as data_commands
from collector.errors import InvalidField, NotFound
from collector.operations import OperationContext, export_files
from collector.operations import export as exporting
from collector.reports.builder import SiteContext
from collector.reports.csv import FORMULA_PREFIXES
from collector.reports.demo import generate
from collector.reports.query import run_report
from collector.reports.request import QuerySpec
from collector.reports.sampling import Sampler
from collector.schema import TABLES, column_names
from collector.settings import Settings
from collector.sites import add_site
from collector.storage import Store, migrate, open_store
from tests import test_cli
from tests.conftest import fresh_database_name
from tests.reporting_data import SITE, at, day, make_event, sample_site_events, store_events
from tests.test_cli import assert_fails_in_one_line, invoke, parsed

# The command line's fixtures: its own database on the session engine.
cli_env, cli_store = test_cli.cli_env, test_cli.cli_store
TIMEZONE = "Europe/Berlin"
FIRST, LAST = day(-1).isoformat(), day(2).isoformat()
FORMATS = ("csv", "jsonl", "parquet")
# Values a spreadsheet would run as formulas, and text that CSV must quote.
RISKY = ["-2+3", '=HYPERLINK("http://x")', "\tTab", "\rReturn", "'quoted", "@SUM(A1)",
         "+1", 'He said "hi", ok', "line one\nline two", "São Paulo"]


@pytest.fixture(scope="module", autouse=True)
def traffic(store: Store) -> Iterator[None]:
    add_site(store, SITE, TIMEZONE)
    risky = make_event(at("15:00"), 7, "/risky", name="Signup",
                       prop_keys=[f"k{index}" for index in range(len(RISKY))],
                       prop_values=RISKY, city="=Evil City", region="-DE")
    elsewhere = make_event(at("15:00"), 8, "/", site="other.example")
    store_events(store, [*sample_site_events(), risky, elsewhere])
    yield


def context(store: Store, **overrides: Any) -> OperationContext:
    return OperationContext(store, Settings.from_env({}, **overrides))


def fresh_store(engine_url: str, label: str) -> Store:
    opened = open_store(engine_url, fresh_database_name(label))
    migrate(opened)
    return opened


def stored_rows(store: Store, table: str, site: str = SITE) -> list[tuple[Any, ...]]:
    """The table's rows (visits collapsed), times as milliseconds, in a stable order."""
    values = [f"toUnixTimestamp64Milli({column.name})" if column.type.startswith("DateTime64")
              else column.name for column in TABLES[table]]
    final = " FINAL" if table == "visits" else ""
    return sorted(store.rows(f"SELECT {', '.join(values)} FROM {table}{final} "
                             "WHERE site = {site:String}", {"site": site}))


def export_to(store: Store, directory: Path, format_name: str, **params: Any) -> dict[str, Any]:
    params.setdefault("from_date", FIRST)
    params.setdefault("to_date", LAST)
    return exporting.export(context(store), site=SITE, format=format_name,
                            output=str(directory / f"site.{format_name}"), **params)


# ---- reading the files back, independently of the importer ------------------------------

def _milliseconds(text: str) -> int:
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() == moment.astimezone(ZoneInfo(TIMEZONE)).utcoffset()
    return int(moment.timestamp() * 1000)


def _typed(table: str, values: dict[str, Any], from_csv: bool) -> tuple[Any, ...]:
    row = []
    for column in TABLES[table]:
        value = values[column.name]
        if column.type.startswith("DateTime64"):
            value = _milliseconds(value)
        elif from_csv and column.type == "Array(String)":
            value = json.loads(value)
        elif from_csv and "Int" in column.type:
            value = int(value)
        elif from_csv and value[:1] == "'":
            value = value[1:]
        row.append(value)
    return tuple(row)


def read_back(result: dict[str, Any], format_name: str) -> dict[str, list[tuple[Any, ...]]]:
    rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TABLES}
    for name in result["files"]:
        path = Path(name)
        if format_name == "jsonl":
            header, *records = [json.loads(line) for line in path.read_text().splitlines()]
            assert header["collector_export"] == 1 and header["timezone"] == TIMEZONE
            for record in records:
                table = record.pop("table")
                assert list(record) == list(column_names(table))  # no other field
                rows[table].append(_typed(table, record, from_csv=False))
        elif format_name == "csv":
            with path.open(newline="") as file:
                header, *cells = list(csv.reader(file))
            table = "events" if "timestamp" in header else "visits"
            assert tuple(header) == column_names(table)
            rows[table] += [_typed(table, dict(zip(header, row)), True) for row in cells]
        else:
            read = pq.read_table(path)
            table = "events" if "timestamp" in read.column_names else "visits"
            assert tuple(read.column_names) == column_names(table)
            for record in read.to_pylist():
                for column in TABLES[table]:
                    if column.type.startswith("DateTime64"):
                        assert str(record[column.name].tzinfo) == TIMEZONE
                        record[column.name] = int(record[column.name].timestamp() * 1000)
                rows[table].append(tuple(record[name] for name in column_names(table)))
    return {table: sorted(found) for table, found in rows.items()}


# ---- round trips -------------------------------------------------------------------------

@pytest.mark.parametrize("format_name", FORMATS)
def test_an_export_read_back_equals_the_source_rows(store: Store, tmp_path: Path,
                                                    format_name: str) -> None:
    result = export_to(store, tmp_path, format_name)
    assert read_back(result, format_name) == {table: stored_rows(store, table)
                                              for table in TABLES}
    assert result["rows"] == {"events": 14, "visits": 8}
    assert not list(tmp_path.glob("*.partial"))


@pytest.mark.parametrize("format_name", FORMATS)
def test_importing_an_export_into_an_empty_database_gives_equal_rows_and_rollups(
        store: Store, engine_url: str, tmp_path: Path, format_name: str,
        rollups_in_use: Sampler) -> None:
    result = export_to(store, tmp_path, format_name)
    target = fresh_store(engine_url, f"import {format_name}")
    imported = exporting.import_files(context(target), result["files"])
    assert imported["rows"] == {"events": 14, "visits": 8}
    for table in TABLES:
        assert stored_rows(target, table) == stored_rows(store, table)
    # The rollups filled through their views, as for live traffic.
    for dimensions in [(), ("visit:source",), ("event:page",), ("time:day", "visit:country")]:
        metrics = ("visitors", "pageviews") if "event:page" in dimensions \
            else ("visitors", "visits", "pageviews", "bounce_rate")
        spec = QuerySpec(SITE, (day(0).isoformat(), day(1).isoformat()), metrics, dimensions)
        now = datetime.now(UTC)
        source = run_report(store, spec, SiteContext(SITE), now, sampler=rollups_in_use)
        copied = run_report(target, spec, SiteContext(SITE), now, sampler=rollups_in_use)
        assert copied.meta["source"] == "rollup"
        assert copied.results == source.results


def test_importing_the_same_export_twice_stores_its_rows_once(
        store: Store, engine_url: str, tmp_path: Path) -> None:
    files = export_to(store, tmp_path, "jsonl")["files"]
    target = fresh_store(engine_url, "import twice")
    exporting.import_files(context(target), files)
    exporting.import_files(context(target), files)
    assert target.rows("SELECT count() FROM events")[0][0] == 14
    assert stored_rows(target, "visits") == stored_rows(store, "visits")


def test_the_range_is_of_days_in_the_sites_timezone(store: Store, tmp_path: Path) -> None:
    result = export_to(store, tmp_path, "jsonl", from_date=day(1).isoformat(),
                       to_date=day(1).isoformat())
    berlin = ZoneInfo(TIMEZONE)
    expected = [row for row in stored_rows(store, "events")
                if datetime.fromtimestamp(row[1] / 1000, berlin).date() == day(1)]
    assert read_back(result, "jsonl")["events"] == expected and len(expected) == 3


@pytest.fixture(scope="module")
def demo_store(engine_url: str) -> Store:
    """30,000 demo events of demo.example over three days: several blocks of rows."""
    source = fresh_store(engine_url, "demo source")
    generate(source, "demo.example", 30_000, 3)
    return source


def export_demo(store: Store, format_name: str, output: Path | None = None,
                operation: OperationContext | None = None) -> dict[str, Any]:
    return exporting.export(operation or context(store), "demo.example", "2000-01-01",
                            date.today().isoformat(), format_name,
                            output=str(output) if output else None)


def test_a_demo_volume_round_trips_through_each_format(demo_store: Store, engine_url: str,
                                                       tmp_path: Path) -> None:
    fingerprint = ("SELECT count(), sum(cityHash64(*)) FROM events",
                   "SELECT count(), sum(cityHash64(*)) FROM visits FINAL")
    for format_name in FORMATS:
        result = export_demo(demo_store, format_name, tmp_path / f"demo.{format_name}")
        target = fresh_store(engine_url, f"demo {format_name}")
        exporting.import_files(context(target), result["files"])
        assert [target.rows(sql) for sql in fingerprint] == \
            [demo_store.rows(sql) for sql in fingerprint]


# ---- streaming ---------------------------------------------------------------------------

class RecordingStream(io.BytesIO):
    """An output stream remembering how many lines each write carried."""

    def __init__(self) -> None:
        super().__init__()
        self.lines_per_write: list[int] = []

    def write(self, data: Any) -> int:
        self.lines_per_write.append(bytes(data).count(b"\n"))
        return super().write(data)


def test_an_export_is_read_and_written_block_by_block(
        demo_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(exporting.STREAM_SETTINGS, "max_block_size", 1000)
    progress: list[int] = []
    stream = RecordingStream()
    operation = OperationContext(demo_store, Settings.from_env({}),
                                 progress=lambda done, total, label: progress.append(done),
                                 output=stream)
    result = export_demo(demo_store, "jsonl", operation=operation)
    rows = sum(result["rows"].values())
    assert result["rows"]["events"] == demo_store.rows("SELECT count() FROM events")[0][0]
    # The header, then one write per block: each block written before the next is read,
    # none holding more than a part of the rows.
    writes = stream.lines_per_write
    assert writes[0] == 1 and sum(writes) == 1 + rows
    assert len(writes) > 10 and max(writes) < rows / 3
    assert progress == sorted(progress) and progress[-1] == rows
    assert len(progress) == len(writes) - 1
    # Parquet: row groups written as blocks gather, a few blocks each.
    monkeypatch.setattr(export_files, "ROW_GROUP_ROWS", 2000)
    parquet = export_demo(demo_store, "parquet", tmp_path / "demo.parquet")
    for path in parquet["files"]:
        metadata = pq.ParquetFile(path).metadata
        sizes = [metadata.row_group(index).num_rows for index in range(metadata.num_row_groups)]
        assert len(sizes) > 2 and max(sizes) < metadata.num_rows / 2
        assert min(sizes[:-1]) >= 2000


# ---- the daily reports -------------------------------------------------------------------

def test_the_aggregate_export_holds_the_reports_figures(store: Store, tmp_path: Path) -> None:
    stream = io.BytesIO()
    result = exporting.export(OperationContext(store, Settings.from_env({}), output=stream),
                              SITE, FIRST, LAST, "jsonl", aggregate=True)
    header, *records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert header["kind"] == "aggregate" and header["timezone"] == TIMEZONE
    site = SiteContext(SITE, TIMEZONE)
    for report, dimension, metrics in exporting.AGGREGATE_REPORTS:
        spec = QuerySpec(SITE, (FIRST, LAST), metrics,
                         ("time:day", dimension) if dimension else ("time:day",))
        expected = [[row["dimensions"][0], dimension, (row["dimensions"][1:] or [None])[0],
                     *[dict(zip(metrics, row["metrics"])).get(name)
                       for name in exporting.AGGREGATE_METRICS]]
                    for row in run_report(store, spec, site, datetime.now(UTC)).results]
        found = [[record["date"], record["dimension"], record["value"],
                  *[record[name] for name in exporting.AGGREGATE_METRICS]]
                 for record in records if record["report"] == report]
        assert found == expected and found, report
        assert result["rows"][report] == len(found)
    daily = {record["date"]: record["pageviews"] for record in records
             if record["report"] == "daily"}
    counted = store.rows("SELECT toString(toDate(timestamp, {tz:String})), count() FROM events "
                         "WHERE site = {site:String} AND name = 'pageview' GROUP BY 1",
                         {"tz": TIMEZONE, "site": SITE})
    assert daily == dict(counted) and len(daily) == 2


@pytest.mark.parametrize("format_name", ["csv", "parquet"])
def test_the_aggregate_export_in_other_formats_has_the_same_rows(
        store: Store, tmp_path: Path, format_name: str) -> None:
    as_jsonl = io.BytesIO()
    exporting.export(OperationContext(store, Settings.from_env({}), output=as_jsonl),
                     SITE, FIRST, LAST, "jsonl", aggregate=True)
    expected = [json.loads(line) for line in as_jsonl.getvalue().splitlines()[1:]]
    result = export_to(store, tmp_path, format_name, aggregate=True)
    (path,) = result["files"]
    if format_name == "csv":
        with open(path, newline="") as file:
            found = list(csv.DictReader(file))
        shown = ["" if row["pageviews"] is None else str(row["pageviews"]) for row in expected]
        assert [(row["report"], row["date"], row["pageviews"]) for row in found] == \
            [(row["report"], row["date"], pageviews) for row, pageviews in zip(expected, shown)]
    else:
        found = pq.read_table(path).to_pylist()
        assert [(row["report"], row["date"].isoformat(), row["value"], row["visitors"])
                for row in found] == \
            [(row["report"], row["date"], row["value"], row["visitors"]) for row in expected]


# ---- CSV cells ---------------------------------------------------------------------------

def test_csv_cells_a_spreadsheet_would_run_get_a_quote(store: Store, tmp_path: Path) -> None:
    result = export_to(store, tmp_path, "csv")
    with open(result["files"][0], newline="") as file:
        header, *rows = list(csv.reader(file))
    for row in rows:
        for cell in row:
            assert cell[:1] not in FORMULA_PREFIXES, cell
    risky = next(dict(zip(header, row)) for row in rows if json.loads(
        dict(zip(header, row))["prop_keys"]) == [f"k{i}" for i in range(len(RISKY))])
    assert risky["city"] == "'=Evil City" and risky["region"] == "'-DE"
    assert json.loads(risky["prop_values"]) == RISKY  # JSON text: starts with "["


# ---- what is refused ---------------------------------------------------------------------

@pytest.mark.parametrize(("params", "field"), [
    ({"format": "xlsx"}, "format"),
    ({"from_date": "yesterday"}, "from"),
    ({"to_date": day(-5).isoformat()}, "to"),
    ({"to_date": "9999-12-31"}, "to"),  # once an OverflowError: the day after it
    ({"from_date": "1969-12-31"}, "from"),
    ({"site": "not a domain"}, "site"),
])
def test_export_mistakes_name_their_field(store: Store, params: dict[str, Any],
                                          field: str) -> None:
    call: dict[str, Any] = {"site": SITE, "from_date": FIRST, "to_date": LAST,
                            "format": "jsonl", **params}
    with pytest.raises(InvalidField) as raised:
        exporting.export(context(store), **call)
    assert raised.value.field == field


def test_export_of_an_unknown_site_or_to_nowhere_is_refused(store: Store,
                                                            tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        exporting.export(context(store), "nosuch.example", FIRST, LAST, "jsonl",
                         output=str(tmp_path / "x.jsonl"))
    with pytest.raises(InvalidField, match="one file per table"):
        exporting.export(OperationContext(store, Settings.from_env({}), output=io.BytesIO()),
                         SITE, FIRST, LAST, "csv")
    with pytest.raises(NotFound):
        exporting.export(context(store), SITE, FIRST, LAST, "jsonl",
                         output=str(tmp_path / "missing" / "x.jsonl"))
    assert list(tmp_path.iterdir()) == []


def _jsonl_file(path: Path, *records: dict[str, Any]) -> Path:
    header = {"collector_export": 1, "kind": "raw"}
    path.write_text("\n".join(json.dumps(record) for record in (header, *records)) + "\n")
    return path


def test_an_import_refuses_anything_the_collector_would_not_store(
        store: Store, engine_url: str, tmp_path: Path) -> None:
    (line,) = [json.loads(text) for text in
               Path(export_to(store, tmp_path, "jsonl")["files"][0]).read_text().splitlines()
               if '"table":"events"' in text][:1]
    target = fresh_store(engine_url, "import refused")
    for mistake, message in [({"ip": "192.0.2.1"}, "unknown field `ip`"),
                             ({"scroll_depth": 300}, "<= 255"),
                             ({"timestamp": "2024-05-01T12:00:00"}, "timezone"),
                             ({"table": "salts"}, "Invalid value 'salts'")]:
        path = _jsonl_file(tmp_path / "bad.jsonl", {**line, **mistake})
        with pytest.raises(InvalidField, match=message) as raised:
            exporting.import_files(context(target), [str(path)])
        assert raised.value.field == "file" and "line 2" in raised.value.reason
    assert target.rows("SELECT count() FROM events")[0][0] == 0


def test_an_import_refuses_files_that_are_not_raw_exports(
        store: Store, engine_url: str, tmp_path: Path) -> None:
    target = fresh_store(engine_url, "import not an export")
    aggregate = export_to(store, tmp_path, "csv", aggregate=True)["files"]
    (tmp_path / "other.jsonl").write_text('{"name": "x"}\n')
    for files, message in [(aggregate, "aggregate"),
                           ([str(tmp_path / "other.jsonl")], "not a collector export"),
                           ([str(tmp_path / "nothing.csv")], "no file")]:
        with pytest.raises((InvalidField, NotFound), match=message):
            exporting.import_files(context(target), files)


def test_an_import_says_when_its_site_is_not_configured(
        store: Store, engine_url: str, tmp_path: Path) -> None:
    files = export_to(store, tmp_path, "jsonl")["files"]
    target = fresh_store(engine_url, "import unlisted")
    add_site(target, "another.example")
    operation = context(target)
    exporting.import_files(operation, files)
    assert operation.notes == [f"{SITE} is not a configured site: events sent for it are "
                               f"refused until `collector sites add {SITE}`"]


# ---- the command line --------------------------------------------------------------------

def test_the_command_line_offers_the_formats_of_the_operation() -> None:
    assert data_commands.FORMATS == exporting.FORMATS


def test_collector_export_and_import_round_trip(
        cli_env: dict[str, str], cli_store: Store, tmp_path: Path) -> None:
    migrate(cli_store)
    add_site(cli_store, SITE, TIMEZONE)
    store_events(cli_store, sample_site_events())
    before = {table: stored_rows(cli_store, table) for table in TABLES}
    exported = parsed(invoke(cli_env, "export", "--site", SITE, "--from", FIRST, "--to", LAST,
                             "--format", "csv", "--output", str(tmp_path / "out.csv"),
                             "--json"))
    assert exported["files"] == [str(tmp_path / "out.events.csv"),
                                 str(tmp_path / "out.visits.csv")]
    cli_store.command("DROP DATABASE collector")
    imported = parsed(invoke(cli_env, "import", *exported["files"], "--json"))
    assert imported["rows"] == exported["rows"] == {"events": 13, "visits": 7}
    target = open_store(cli_env["COLLECTOR_CLICKHOUSE_URL"], "collector")
    assert {table: stored_rows(target, table) for table in TABLES} == before


def test_collector_export_streams_to_stdout(
        cli_env: dict[str, str], cli_store: Store) -> None:
    migrate(cli_store)
    store_events(cli_store, sample_site_events())
    result = invoke(cli_env, "export", "--site", SITE, "--from", FIRST, "--to", LAST)
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[0]["collector_export"] == 1 and len(lines) == 1 + 13 + 7
    assert result.stderr.endswith("13 events, 7 visits -> stdout\n")
    refused = invoke(cli_env, "export", "--site", SITE, "--from", FIRST, "--to", LAST,
                     "--json")
    assert refused.exit_code == 2 and refused.stdout == ""
    csv_to_stdout = invoke(cli_env, "export", "--site", SITE, "--from", FIRST, "--to", LAST,
                           "--format", "csv")
    assert_fails_in_one_line(csv_to_stdout, "one file per table")


def test_an_aggregate_parquet_export_streams_to_a_pipe(store: Store) -> None:
    class Pipe:
        """Write only: no seek, no tell, as stdout or the admin channel."""

        def __init__(self) -> None:
            self.received = b""
            self.closed = False

        def write(self, data: bytes) -> int:
            self.received += bytes(data)
            return len(data)

        def flush(self) -> None:
            pass

    pipe = Pipe()
    result = exporting.export(OperationContext(store, Settings.from_env({}),
                                               output=pipe),  # type: ignore[arg-type]
                              SITE, FIRST, LAST, "parquet", aggregate=True)
    read = pq.read_table(io.BytesIO(pipe.received))
    assert read.num_rows == sum(result["rows"].values()) > 0


def test_an_import_that_failed_part_way_can_be_run_again(
        store: Store, engine_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(exporting, "IMPORT_BATCH_ROWS", 4)
    (path,) = export_to(store, tmp_path, "jsonl")["files"]
    good = Path(path).read_text()
    broken = tmp_path / "broken.jsonl"
    broken.write_text(good + good.splitlines()[1].replace('"site":', '"ip":"192.0.2.1","site":')
                      + "\n")
    target = fresh_store(engine_url, "import again")
    with pytest.raises(InvalidField, match=r"\(20 rows before it were imported"):
        exporting.import_files(context(target), [str(broken)])
    broken.write_text(good)
    exporting.import_files(context(target), [str(broken)])
    for table in TABLES:
        assert stored_rows(target, table) == stored_rows(store, table)


def test_the_site_may_be_named_by_an_address(store: Store) -> None:
    stream = io.BytesIO()
    result = exporting.export(OperationContext(store, Settings.from_env({}), output=stream),
                              f"https://{SITE.upper()}/", FIRST, LAST, "jsonl")
    assert result["site"] == SITE and result["rows"]["events"] == 14


def test_rows_either_side_of_a_month_boundary_are_read_month_by_month(
        engine_url: str) -> None:
    source = fresh_store(engine_url, "month boundary")
    add_site(source, SITE, TIMEZONE)
    today = datetime.now(UTC).date()
    boundary = datetime(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1,
                        tzinfo=UTC)  # the start of last month, UTC: a partition boundary
    before, after = (int(boundary.timestamp() * 1000) + offset * 60_000 for offset in (-30, 30))
    store_events(source, [make_event(before, 1, "/before"), make_event(after, 2, "/after")])
    local_first_day = boundary.astimezone(ZoneInfo(TIMEZONE)).date()  # Berlin is ahead

    def exported_pages(first: date, last: date) -> list[str]:
        stream = io.BytesIO()
        exporting.export(OperationContext(source, Settings.from_env({}), output=stream),
                         SITE, first.isoformat(), last.isoformat(), "jsonl")
        return sorted(record["pathname"] for record in map(json.loads,
                                                          stream.getvalue().splitlines()[1:])
                      if record["table"] == "events")

    assert exported_pages(local_first_day - timedelta(days=1), local_first_day) == \
        ["/after", "/before"]
    # 23:30 UTC on the month's last day is already the month's first day in Berlin.
    assert exported_pages(local_first_day, local_first_day) == ["/after", "/before"]
    assert exported_pages(local_first_day - timedelta(days=1),
                          local_first_day - timedelta(days=1)) == []

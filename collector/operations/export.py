"""Operations ``export.export`` and ``export.import``: a site's data out, and back in.

An export holds the ``events`` and ``visits`` rows of one site whose time lies in
a range of days in the site's timezone (events by their time, visits by their
start), visits as their final states (``FINAL``: one row per visit). The file
layout of each format is described in ``collector.operations.export_files``.
With ``aggregate`` it holds the daily reports instead (visitors, visits,
pageviews... per day, and per day and page, source, country, device), computed
by the reports themselves, so the figures are the dashboard's.

Nothing is held whole in memory: rows come from ClickHouse block by block
(``BLOCK_ROWS``), one month (partition, by UTC month as the tables are partitioned)
after another, on a connection of their own, so a long export never makes
ingest or a report wait; ClickHouse formats the CSV and JSON lines itself
(``formatRow``), Parquet gathers blocks into row groups, and each block is
written before the next is read (``benchmarks/bench_export.py`` measures the
memory). Import reads the files back in batches and inserts them like the
writer does, so the rollups fill through their materialized views as for live
traffic; each batch carries a token made of its content, so importing a file
twice (or again after a failure part way) stores its rows once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import msgspec
import pyarrow as pa

from collector.errors import InvalidField, NotFound
from collector.operations import OperationContext, operation
from collector.operations.export_files import (
    QUOTED_PREFIXES,
    ParquetSink,
    RecordWriter,
    arrow_schema,
    csv_row,
    jsonl_header,
    read_export,
)
from collector.reports.builder import SiteContext
from collector.reports.dates import MAX_RANGE_DAYS, DateRange, local_midnight, report_day
from collector.reports.query import run_report
from collector.reports.request import MAX_LIMIT, QuerySpec
from collector.reports.sampling import Sampler
from collector.schema import TABLES, TIME_COLUMNS, Column, column_names
from collector.sites import domain_of, list_sites
from collector.storage import Store, open_store
from collector.storage.cluster import Deployment

FORMATS = ("csv", "jsonl", "parquet")
BLOCK_ROWS = 2048  # larger blocks only cost memory (benchmarks/bench_export.py)
IMPORT_BATCH_ROWS = 20_000  # per table: a batch of Python values is held to insert it
STREAM_SETTINGS = {
    "max_block_size": BLOCK_ROWS,
    # One reading thread, parts one after another and no ORDER BY: reading several parts
    # at once (or merging them in key order) holds buffers for each, hundreds of MB at 10M
    # events, where this stays within 200 MB (bench_export.py) at little cost in speed.
    "max_threads": 1,
    "output_format_json_quote_64bit_integers": 0,  # visitor hashes stay numbers
    "output_format_csv_crlf_end_of_line": 1,  # CSV lines end as the header's (RFC 4180)
    "output_format_json_escape_forward_slashes": 0,
    "output_format_json_validate_utf8": 1,
    "formatdatetime_f_prints_scale_number_of_digits": 1,  # .123, the stored milliseconds
}
AGGREGATE_METRICS = ("visitors", "visits", "pageviews", "bounce_rate", "visit_duration")
AGGREGATE_COLUMNS = ("report", "date", "dimension", "value", *AGGREGATE_METRICS)
# (report, its dimension besides the day, its metrics): what the rollups answer.
AGGREGATE_REPORTS = (
    ("daily", "", AGGREGATE_METRICS),
    ("pages", "event:page", ("visitors", "pageviews")),
    ("sources", "visit:source", AGGREGATE_METRICS),
    ("countries", "visit:country", AGGREGATE_METRICS),
    ("devices", "visit:device", AGGREGATE_METRICS),
)
AGGREGATE_SCHEMA = pa.schema(
    [pa.field("report", pa.string(), nullable=False), pa.field("date", pa.date32(), False),
     pa.field("dimension", pa.string(), False), pa.field("value", pa.string()),
     *(pa.field(name, pa.int64()) for name in AGGREGATE_METRICS)])


@dataclass(frozen=True)
class _Scope:
    """What one export covers, and in which format."""

    site: str
    timezone: str
    period: DateRange
    format: str

    def header(self, kind: str) -> dict[str, Any]:
        return {"kind": kind, "site": self.site, "from": self.period.first_day.isoformat(),
                "to": self.period.last_day.isoformat(), "timezone": self.timezone}

    def parameters(self, start: datetime | None = None,
                   end: datetime | None = None) -> dict[str, Any]:
        """The query parameters, for the whole period or the part ``start``..``end``."""
        return {"site": self.site, "tz": self.timezone, "quoted": list(QUOTED_PREFIXES),
                "start": _milliseconds(start or self.period.start),
                "end": _milliseconds(end or self.period.end)}

    def months(self, stored: set[str]) -> Iterator[tuple[datetime, datetime]]:
        """The period cut at UTC month starts (the tables' partitions), keeping the months
        in ``stored`` (YYYYMM)."""
        start = self.period.start
        while start < self.period.end:
            following = datetime(start.year + start.month // 12, start.month % 12 + 1, 1,
                                 tzinfo=UTC)
            if start.strftime("%Y%m") in stored:
                yield start, min(following, self.period.end)
            start = following


@operation("export.export")
def export(context: OperationContext, site: str, from_date: str, to_date: str,
           format: str = "jsonl", aggregate: bool = False,
           output: str | None = None) -> dict[str, Any]:
    """Write the site's rows (or its daily reports) of ``from_date``..``to_date`` (site-local
    days, both included) to ``output`` (a path; csv and parquet name one file per table
    after it), or stream them to ``context.output``."""
    scope = _scope(context, site, from_date, to_date, format)
    if aggregate and (scope.period.last_day - scope.period.first_day).days > MAX_RANGE_DAYS:
        raise InvalidField(f"the daily reports cover at most {MAX_RANGE_DAYS} days", "to")
    names = ["report"] if aggregate or format == "jsonl" else list(TIME_COLUMNS)
    with _outputs(output, context.output, names, format) as targets:
        if aggregate:
            rows = _write_aggregate(context, scope, targets.files["report"])
        else:
            rows = _write_raw(context, scope, targets.files)
    return {**scope.header("aggregate" if aggregate else "raw"), "format": format,
            "rows": rows, "files": targets.paths}


@operation("export.import")
def import_files(context: OperationContext, files: list[str]) -> dict[str, Any]:
    """Insert the rows of the collector's own (raw) exports; returns rows per file and table."""
    paths = [Path(name) for name in files]
    if not paths:
        raise InvalidField("name at least one file to import", "file")
    for path in paths:
        if not path.is_file():
            raise NotFound(f"no file {path}", "file")
    total = sum(path.stat().st_size for path in paths)
    done = 0
    counted: list[dict[str, Any]] = []
    sites: set[str] = set()
    for path in paths:
        rows = dict.fromkeys(TABLES, 0)
        try:
            for batch in read_export(path, IMPORT_BATCH_ROWS):
                _insert(context.store, batch.table, batch.columns)
                rows[batch.table] += len(batch.columns[0])
                sites.update(batch.columns[0])  # the first column of both tables
                context.progress(done + batch.position, total, f"importing {path.name}")
        except InvalidField as error:
            if not sum(rows.values()):
                raise
            raise InvalidField(f"{error.reason} ({sum(rows.values())} rows before it were "
                               "imported; importing the file again stores them once)",
                               error.field) from None
        done += path.stat().st_size
        counted.append({"path": str(path), "rows": rows})
    _note_unlisted_sites(context, sites)
    return {"files": counted,
            "rows": {table: sum(item["rows"][table] for item in counted) for table in TABLES}}


def _scope(context: OperationContext, site: str, from_date: str, to_date: str,
           format_name: str) -> _Scope:
    if format_name not in FORMATS:
        raise InvalidField(f"unknown format {format_name!r} (use {', '.join(FORMATS)})",
                           "format")
    domain = domain_of(site, "site")
    first, last = report_day(from_date, "from"), report_day(to_date, "to")
    if last < first:
        raise InvalidField("the end date is before the start date", "to")
    timezone = _timezone(context, domain)
    # Local midnights, DST included; a raw export may span any number of days.
    period = DateRange(local_midnight(first, timezone),
                       local_midnight(last + timedelta(days=1), timezone), first, last)
    return _Scope(domain, timezone, period, format_name)


def _timezone(context: OperationContext, site: str) -> str:
    """The site's timezone; UTC for a site only configured, or only present in the data."""
    stored = list_sites(context.store, site)
    if stored:
        return stored[0].timezone
    if site in context.settings.sites or context.store.rows(
            "SELECT 1 FROM events WHERE site = {site:String} LIMIT 1", {"site": site}):
        return "UTC"
    raise NotFound(f"no site {site!r}: it is not configured and nothing is stored for it",
                   "site")


def _milliseconds(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# ---- raw rows ------------------------------------------------------------------------

def _write_raw(context: OperationContext, scope: _Scope,
               targets: dict[str, BinaryIO]) -> dict[str, int]:
    totals = {table: _row_count(context.store, table, scope) for table in TIME_COLUMNS}
    done, written = 0, {}
    header = scope.header("raw")
    if scope.format == "jsonl":
        targets["report"].write(jsonl_header(
            {**header, "tables": {table: list(column_names(table)) for table in TIME_COLUMNS}}))
    # A connection of its own: the stream holds it until the last block is read.
    reader = open_store(context.store.url, context.store.database)
    try:
        for table in TIME_COLUMNS:
            months = _stored_months(reader, context.deployment, table)
            stream = targets.get(table) or targets["report"]
            parquet = ParquetSink(stream, arrow_schema(table, scope.timezone),
                                  {**header, "table": table}) \
                if scope.format == "parquet" else None
            if scope.format == "csv":
                stream.write(csv_row(column_names(table)))
            written[table] = 0
            for block in _blocks(reader, table, scope, months):
                if parquet is None:
                    stream.write(b"".join(block[0]))
                else:
                    parquet.write(block)
                written[table] += len(block[0])
                done += len(block[0])
                context.progress(done, max(done, sum(totals.values())), f"exporting {table}")
            if parquet is not None:
                parquet.close()
    finally:
        reader.close()
    return written


def _stored_months(reader: Store, deployment: Deployment, table: str) -> set[str]:
    """The months (YYYYMM partitions) holding rows of ``table``, on any shard."""
    return {str(partition) for (partition,) in reader.rows(
        f"SELECT DISTINCT partition FROM {deployment.parts} WHERE database = "
        "{database:String} AND table = {table:String} AND active",
        {"database": reader.database, "table": deployment.stored_table(table)})}


def _blocks(reader: Store, table: str, scope: _Scope,
            stored: set[str]) -> Iterator[list[Sequence[Any]]]:
    """The table's rows in scope, block by block, one month (partition) after another:
    a query reads the parts of one partition only, so memory does not grow with the
    range (FINAL merges every part it reads at once). On a cluster the Distributed
    table reads every shard, and FINAL merges each visit on the shard holding it."""
    for start, end in scope.months(stored):
        blocks = reader.stream_columns(_raw_sql(table, scope.format),
                                       scope.parameters(start, end), STREAM_SETTINGS,
                                       strings_as_bytes=scope.format != "parquet")
        with closing(blocks):
            yield from blocks


def _row_count(store: Store, table: str, scope: _Scope) -> int:
    time_column = TIME_COLUMNS[table]
    counted = "count()" if table == "events" else "sum(sign)"  # visits: collapsed states
    rows = store.rows(f"SELECT {counted} FROM {table} WHERE {_in_scope(time_column)}",
                      scope.parameters())
    return max(0, int(rows[0][0] or 0))


def _in_scope(time_column: str) -> str:
    return (f"site = {{site:String}} AND {time_column} >= fromUnixTimestamp64Milli("
            f"{{start:Int64}}) AND {time_column} < fromUnixTimestamp64Milli({{end:Int64}})")


def _raw_sql(table: str, format_name: str) -> str:
    """One table's rows as stored (no sort), as CSV or JSON lines, or as columns for Parquet."""
    time_column = TIME_COLUMNS[table]
    final = " FINAL" if table == "visits" else ""  # a visit's final state, not its updates
    rows = f"SELECT * FROM {table}{final} WHERE {_in_scope(time_column)}"
    values = [_value_sql(column, format_name) for column in TABLES[table]]
    if format_name == "parquet":
        return f"SELECT {', '.join(values)} FROM ({rows})"
    if format_name == "csv":
        return f"SELECT formatRow('CSV', {', '.join(values)}) FROM ({rows})"
    return f"SELECT formatRow('JSONEachRow', '{table}' AS table, {', '.join(values)}) FROM ({rows})"


def _value_sql(column: Column, format_name: str) -> str:
    name = column.name
    if column.type.startswith("DateTime64"):
        value = f"toUnixTimestamp64Milli({name})" if format_name == "parquet" \
            else _local_time_sql(name)
    elif format_name != "csv":
        return name
    elif column.type == "Array(String)":
        value = f"toJSONString({name})"
    elif column.type in ("String", "LowCardinality(String)"):
        # No cell a spreadsheet would run as a formula (see export_files).
        value = (f"if(has({{quoted:Array(String)}}, substring({name}, 1, 1)), "
                 f"concat('''', {name}), {name})")
    else:
        return name
    return f"{value} AS {name}"


def _local_time_sql(column: str) -> str:
    """RFC 3339 in the site's timezone with its offset: 2024-05-01T12:00:00.123+02:00."""
    offset = f"formatDateTime({column}, '%z', {{tz:String}})"
    return (f"concat(formatDateTime({column}, '%Y-%m-%dT%H:%i:%S.%f', {{tz:String}}), "
            f"substring({offset}, 1, 3), ':', substring({offset}, 4, 2))")


# ---- daily reports -------------------------------------------------------------------

def _write_aggregate(context: OperationContext, scope: _Scope,
                     stream: BinaryIO) -> dict[str, int]:
    writer = RecordWriter(scope.format, stream, AGGREGATE_COLUMNS, AGGREGATE_SCHEMA,
                          scope.header("aggregate"))
    reading = _Reading(context.store, scope, SiteContext(scope.site, scope.timezone),
                       datetime.now(UTC), Sampler())
    written = {}
    for index, (report, dimension, metrics) in enumerate(AGGREGATE_REPORTS):
        written[report] = 0
        for results in reading.pages(dimension, metrics):
            writer.write([_record(report, dimension, metrics, result, scope.format)
                          for result in results])
            written[report] += len(results)
        context.progress(index + 1, len(AGGREGATE_REPORTS), f"exporting {report}")
    writer.close()
    return written


@dataclass(frozen=True)
class _Reading:
    store: Store
    scope: _Scope
    site: SiteContext
    now: datetime
    sampler: Sampler

    def pages(self, dimension: str, metrics: tuple[str, ...]) -> Iterator[list[Any]]:
        """The report's results by day (and ``dimension``), a page of MAX_LIMIT at a time."""
        period = self.scope.period
        offset = 0
        while True:
            spec = QuerySpec(site_id=self.scope.site,
                             date_range=(period.first_day.isoformat(),
                                         period.last_day.isoformat()),
                             metrics=metrics,
                             dimensions=("time:day", dimension) if dimension else ("time:day",),
                             limit=MAX_LIMIT, offset=offset)
            results = run_report(self.store, spec, self.site, self.now,
                                 sampler=self.sampler).results
            if results:
                yield results
            if len(results) < MAX_LIMIT:
                return
            offset += MAX_LIMIT


def _record(report: str, dimension: str, metrics: tuple[str, ...], result: dict[str, Any],
            format_name: str) -> tuple[Any, ...]:
    day, *value = result["dimensions"]
    figures = dict(zip(metrics, result["metrics"]))
    shown_day = date.fromisoformat(day) if format_name == "parquet" else day
    return (report, shown_day, dimension, value[0] if value else None,
            *(figures.get(name) for name in AGGREGATE_METRICS))


# ---- files ---------------------------------------------------------------------------

@dataclass
class _Targets:
    files: dict[str, BinaryIO]
    paths: list[str]


@contextmanager
def _outputs(output: str | None, stream: BinaryIO | None, names: list[str],
             format_name: str) -> Iterator[_Targets]:
    """Where each part goes: ``stream`` (one part only), or files written under a
    temporary name and renamed once complete, so a failed export leaves no half file."""
    if output is None:
        if stream is None:
            raise InvalidField("name a file to write the export to", "output")
        if len(names) > 1:
            raise InvalidField(f"a {format_name} export of events and visits is one file per "
                               "table: name a file (--output) to derive their names from",
                               "output")
        yield _Targets({names[0]: stream}, [])
        return
    base = Path(output)
    if not base.parent.is_dir():
        raise NotFound(f"no directory {base.parent} to write {base.name} in", "output")
    paths = {name: base if len(names) == 1 else _table_path(base, name, format_name)
             for name in names}
    partial = {name: path.with_name(path.name + ".partial") for name, path in paths.items()}
    files: dict[str, BinaryIO] = {}
    try:
        for name, path in partial.items():
            files[name] = path.open("wb")
        yield _Targets(files, [str(path) for path in paths.values()])
        for name, file in files.items():
            file.close()
            partial[name].replace(paths[name])
    finally:
        for name, file in files.items():
            file.close()
            partial[name].unlink(missing_ok=True)


def _table_path(base: Path, table: str, format_name: str) -> Path:
    """``out.csv`` → ``out.events.csv``; ``out`` → ``out.events.csv``."""
    suffix = f".{format_name}"
    stem = base.name[:-len(suffix)] if base.name.endswith(suffix) else base.name
    return base.with_name(f"{stem}.{table}{suffix}")


# ---- import --------------------------------------------------------------------------

def _insert(store: Store, table: str, columns: list[list[Any]]) -> None:
    # The token is the batch's content: the same rows imported again are stored once.
    digest = hashlib.blake2b(msgspec.json.encode(columns), digest_size=16).hexdigest()
    store.insert_columns(table, column_names(table), columns, token=f"import-{table}-{digest}")


def _note_unlisted_sites(context: OperationContext, sites: set[str]) -> None:
    listed = {site.domain for site in list_sites(context.store)} | set(context.settings.sites)
    for site in sorted(sites - listed if listed else set()):
        context.notes.append(f"{site} is not a configured site: events sent for it are "
                             f"refused until `collector sites add {site}`")

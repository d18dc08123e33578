"""``collector copy --to http(s)://...``: move an embedded installation onto a ClickHouse server."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, print_table, run
from collector.errors import StorageError
from collector.operations.copy import DEFAULT_BATCH_ROWS


@click.command("copy")
@click.option("--to", "to", required=True, metavar="URL",
              help="The server's database: http(s)://USER:PASSWORD@HOST:PORT/DATABASE "
                   "(created and migrated when missing).")
@click.option("--cluster", metavar="NAME",
              help="The server is a node of the ClickHouse cluster NAME: lay the database out "
                   "on the cluster, as COLLECTOR_CLICKHOUSE_CLUSTER=NAME does "
                   "(docs/deployment.md). Without it, one server.")
@click.option("--batch-rows", type=click.IntRange(min=1), default=DEFAULT_BATCH_ROWS,
              show_default=True, help="Rows per insert into the server.")
@json_option
@click.pass_context
def copy(ctx: click.Context, to: str, cluster: str | None, batch_rows: int,
         as_json: bool) -> None:
    """Move this installation onto a ClickHouse server or cluster.

    Stop `collector serve` first. Sites, keys, goals, settings, today's and yesterday's
    salts, events, visits and drops move by table and day, in batches, with a progress
    bar on a terminal; the rollups fill on the server and are compared with these.
    Interrupted, run it again: it resumes and stores nothing twice. Ends with the rows
    of every table and day counted on both sides; exit 1 if any day differs.
    """
    result = run(ctx, "copy.copy", {"to": to, "batch_rows": batch_rows,
                                    "cluster": cluster or ""})
    emit(result, as_json, _print_result)
    if not result["verified"]:
        days = sum(len(table["mismatched_days"]) for table in result["tables"])
        raise StorageError(f"{days} table days differ between this store and "
                           f"{result['target']}: run the copy again, or see the list above")


def _print_result(result: dict[str, Any]) -> None:
    print_table(("table", "days", "rows here", "rows there", "sent now", "check"),
                [(table["table"], _days(table), f"{table['source_rows']:,}",
                  f"{table['target_rows']:,}", f"{table['sent_rows']:,}",
                  "ok" if not table["mismatched_days"]
                  else f"{len(table['mismatched_days'])} days differ")
                 for table in result["tables"]])
    for table in result["tables"]:
        for day in table["mismatched_days"]:
            counts = next(row for row in table["days"] if row["day"] == day)
            click.echo(f"differs: {table['table']} {day or '(whole table)'}: "
                       f"{counts['source']:,} rows here, {counts['target']:,} there")
    if result["verified"]:
        cluster = f" and COLLECTOR_CLICKHOUSE_CLUSTER={result['cluster']}" \
            if result.get("cluster") else ""
        click.echo(f"Copied to {result['target']}: every table and day holds the same rows "
                   f"there (salts from {result['salts_from']}). Point the collectors at it "
                   f"with COLLECTOR_CLICKHOUSE_URL{cluster}.")


def _days(table: dict[str, Any]) -> str:
    dated = [row["day"] for row in table["days"] if row["day"]]
    if not dated:
        return "-"
    return f"{len(dated)} ({dated[0]}..{dated[-1]})" if len(dated) > 1 else dated[0]


COMMANDS = [copy]

"""``collector export``, ``collector import`` and ``collector check``: data out, back in, and
the statement of what this installation collects."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from collector.cli.output import emit, json_option, run
from collector.operations.compliance import shown_months, statement_markdown

# The formats of collector.operations.export (kept here so `collector --help` does not
# load Parquet; a test holds the two lists equal).
FORMATS = ("csv", "jsonl", "parquet")


@click.command("export")
@click.option("--site", required=True, help="The site whose data is exported.")
@click.option("--from", "from_date", required=True, metavar="YYYY-MM-DD",
              help="First day, in the site's timezone.")
@click.option("--to", "to_date", required=True, metavar="YYYY-MM-DD",
              help="Last day (included), in the site's timezone.")
@click.option("--format", "format_name", type=click.Choice(FORMATS), default="jsonl",
              show_default=True, help="File format.")
@click.option("--aggregate", is_flag=True, default=False, show_default=True,
              help="Write the daily reports (visitors, visits, pageviews; pages, sources, "
                   "countries, devices) instead of the events and visits.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write; csv and parquet exports of events and visits write one "
                   "file per table named after it (out.events.csv, out.visits.csv). "
                   "Default: stdout.")
@json_option
@click.pass_context
def export(ctx: click.Context, site: str, from_date: str, to_date: str, format_name: str,
           aggregate: bool, output: Path | None, as_json: bool) -> None:
    """Export a site's events and visits for a range of days.

    With --aggregate, its daily reports instead. Rows stream out block by block, never
    whole in memory; a progress bar shows on a terminal. `collector import` reads the
    files back.
    """
    if output is None and as_json:
        raise click.UsageError("--json prints a summary on stdout, which holds the export "
                               "without --output")
    params = {"site": site, "from_date": from_date, "to_date": to_date,
              "format": format_name, "aggregate": aggregate,
              # The server may be the one writing: give it a path that does not depend
              # on this shell's directory.
              "output": str(output.resolve()) if output else None}
    stdout = None if output else sys.stdout.buffer  # the stream click's runner swaps in too
    result = run(ctx, "export.export", params, output=stdout)
    if output is None:
        click.echo(_export_summary(result), err=True)
    else:
        emit(result, as_json, lambda done: click.echo(_export_summary(done)))


def _export_summary(result: dict[str, Any]) -> str:
    rows = ", ".join(f"{count:,} {name}" for name, count in result["rows"].items())
    where = ", ".join(result["files"]) or "stdout"
    return (f"{result['site']} {result['from']}..{result['to']} ({result['timezone']}): "
            f"{rows} -> {where}")


@click.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option
@click.pass_context
def import_command(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Import files written by `collector export`.

    Events and visits in any of the formats (not --aggregate exports). The rollups fill
    as for live traffic; importing a file again stores its rows once.
    """
    result = run(ctx, "export.import", {"files": [str(path.resolve()) for path in files]})
    emit(result, as_json, _print_import)


def _print_import(result: dict[str, Any]) -> None:
    for item in result["files"]:
        rows = item["rows"]
        click.echo(f"{item['path']}: {rows['events']:,} events, {rows['visits']:,} visits")


@click.command("check")
@click.option("--markdown", is_flag=True, default=False, show_default=True,
              help="Print the statement as Markdown a site owner can publish (the warnings "
                   "go to stderr).")
@json_option
@click.pass_context
def check(ctx: click.Context, markdown: bool, as_json: bool) -> None:
    """State what this installation collects and keeps.

    Read from the live configuration: what is stored and what never is, retention per
    site and tier, salts, consent signals, proxies, the geo database and its
    attribution, with a warning for each risky setting.
    """
    if markdown and as_json:
        raise click.UsageError("choose --markdown or --json")
    result = run(ctx, "compliance.check")
    if markdown:
        click.echo(statement_markdown(result), nl=False)
        for warning in result["warnings"]:
            click.echo(f"collector: warning: {warning['message']}", err=True)
        return
    emit(result, as_json, _print_statement)


def _print_statement(result: dict[str, Any]) -> None:
    sites = result["sites"]
    click.echo("Sites: " + (", ".join(sites["domains"]) or "none configured (dev mode)"))
    click.echo("\nStored:")
    for group in result["collected"]:
        state = group["what"] if group["stored"] else f"(empty: {group['why_empty']})"
        click.echo(f"  {group['name']:<12} {state}\n  {'':<12} columns: "
                   + ", ".join(group["columns"]))
    click.echo("\nNever stored: " + "; ".join(result["never_collected"]))
    retention = result["retention"]
    enforced = ", ".join(f"{table} {shown_months(months)}"
                         for table, months in retention["enforced_months"].items())
    click.echo(f"\nRetention: events and visits {shown_months(retention['raw_months'])}, daily "
               f"reports {shown_months(retention['rollup_months'])} (table TTLs: {enforced})")
    salts = result["salts"]
    click.echo("Salts: " + (", ".join(salts["days"]) or "none yet (made on the day's "
                                                         "first event)"))
    click.echo("Consent signals (DNT, GPC): "
               + ("honoured" if result["consent"]["honor_dnt"] else "ignored"))
    proxies = result["proxies"]
    seen = proxies["untrusted_forwarding"]
    click.echo("Trusted proxies: " + (", ".join(proxies["trusted"]) or "none")
               + "; forwarding headers from other peers: "
               + ("unknown (run this while `collector serve` runs)" if seen is None
                  else f"{seen:,} requests"))
    for site in result["share_links"]:
        spent = max((link["spent_today"] for link in site["share_links"]), default=0.0)
        click.echo(f"Share links of {site['site']}: rows of {site['public_k']}+ visitors, "
                   f"noise epsilon {site['epsilon']:g} per answer, {site['epsilon_day']:g} "
                   f"per link and UTC day; {len(site['share_links'])} active, the most spent "
                   f"today {spent:g}")
    geo = result["geoip"]
    click.echo("GeoIP: " + (f"{geo['source']} ({geo['database']})" if geo["database"]
                            else "no database")
               + (f"\n  {geo['attribution']}" if geo["attribution"] else ""))
    click.echo("")
    for warning in result["warnings"]:
        click.echo(f"warning: {warning['message']}")
    if not result["warnings"]:
        click.echo("No warnings.")


COMMANDS = [export, import_command, check]

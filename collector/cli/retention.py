"""``collector purge``, ``collector erase``, ``collector retention set | show`` and
``collector audit``: what is kept, removing what must go, and the record of removals."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, print_table, run

DRY_RUN_HINT = "dry run: nothing removed; repeat with --yes to remove it"


@click.command()
@click.option("--dry-run/--yes", "dry_run", default=True, show_default=True,
              help="Only count what is past its retention (--dry-run), or remove it (--yes).")
@json_option
@click.pass_context
def purge(ctx: click.Context, dry_run: bool, as_json: bool) -> None:
    """Remove the rows past each site's retention.

    Raw events and visits past the raw tier, rollups past the rollup tier; whole
    partitions are dropped where every row expired, the others rewritten, so the
    rows leave the disk. Prints rows and bytes per table; an applied purge is
    audited. `collector serve` runs it once a day.
    """
    emit(run(ctx, "retention.purge", {"dry_run": dry_run}), as_json, print_removal)


@click.command()
@click.option("--site", required=True, help="The site whose rows are erased.")
@click.option("--from", "from_date", metavar="YYYY-MM-DD", default=None,
              help="First UTC day erased (default: the first stored).")
@click.option("--to", "to_date", metavar="YYYY-MM-DD", default=None,
              help="Last UTC day erased, included (default: the last stored).")
@click.option("--path-like", metavar="PATTERN", default=None,
              help="Only pages matching this SQL LIKE pattern (% any text, _ one "
                   "character), e.g. '/account/%'.")
@click.option("--prop", metavar="KEY=VALUE", default=None,
              help="Only events whose props hold KEY=VALUE (the audit keeps its SHA-256, "
                   "not the value).")
@click.option("--yes", is_flag=True, default=False, show_default=True,
              help="Erase; without it only count what would go.")
@json_option
@click.pass_context
def erase(ctx: click.Context, site: str, from_date: str | None, to_date: str | None,
          path_like: str | None, prop: str | None, yes: bool, as_json: bool) -> None:
    """Erase a site's events and visits; its rollups follow.

    The filters combine; with none, everything of the site goes. A visit goes whole
    when one of its events matches, or its entry or exit page. The days the rows fell
    on are rolled up again from the rows left. Prints rows and bytes per table; an
    applied erasure is audited.
    """
    params = {"site": site, "from_date": from_date, "to_date": to_date,
              "path_like": path_like, "prop": prop, "yes": yes}
    emit(run(ctx, "erase.matching", params), as_json, print_removal)


@click.group()
def retention() -> None:
    """How long each site's raw rows and rollups are kept."""


@retention.command("set")
@click.argument("site")
@click.option("--raw-months", type=int, default=None,
              help="Months SITE's events and visits are kept, at most "
                   "COLLECTOR_RETENTION_MONTHS (default: unchanged).")
@click.option("--rollup-months", type=int, default=None,
              help="Months SITE's rollups are kept, at least its raw months and at most "
                   "COLLECTOR_ROLLUP_RETENTION_MONTHS (default: unchanged).")
@click.option("--reset", is_flag=True, default=False, show_default=True,
              help="Return SITE to the settings' retention.")
@json_option
@click.pass_context
def set_command(ctx: click.Context, site: str, raw_months: int | None,
                rollup_months: int | None, reset: bool, as_json: bool) -> None:
    """Keep SITE's rows less long than the settings say.

    The settings are the TTL every site is held to; a site may keep less, never more.
    `collector purge` (or the daily purge of `collector serve`) applies it.
    """
    result = run(ctx, "retention.set", {"site": site, "raw_months": raw_months,
                                        "rollup_months": rollup_months, "reset": reset})
    emit(result, as_json, lambda entry: click.echo(_tiers_line(entry)))


@retention.command("show")
@click.argument("site", required=False)
@json_option
@click.pass_context
def show(ctx: click.Context, site: str | None, as_json: bool) -> None:
    """Show the retention of SITE, or of every known site."""
    emit(run(ctx, "retention.show", {"site": site}), as_json, _print_retention)


@click.command()
@click.option("--command", "command_name", type=click.Choice(["purge", "erase", "erase site"]),
              default=None, help="Only this command's rows (default: every command).")
@click.option("--site", default=None, help="Only rows whose scope names this site.")
@click.option("--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="Newest rows shown; 0 for all.")
@json_option
@click.pass_context
def audit(ctx: click.Context, command_name: str | None, site: str | None, limit: int,
          as_json: bool) -> None:
    """List applied purges and erasures, newest first.

    Each with when, its scope, and the rows and bytes it removed per table.
    """
    result = run(ctx, "audit.list", {"command": command_name, "site": site, "limit": limit})
    emit(result, as_json, _print_audit)


def print_removal(result: dict[str, Any]) -> None:
    verb = "would remove" if result["dry_run"] else "removed"
    click.echo(f"{verb} {result['rows']:,} rows ({_size(result['bytes'])})")
    print_table(("table", "rows", "bytes", "partitions dropped", "partitions rewritten"),
                ((table, f"{entry['rows']:,}", _size(entry["bytes"]),
                  " ".join(entry["partitions_dropped"]) or "-",
                  " ".join(entry["partitions_rewritten"]) or "-")
                 for table, entry in result["tables"].items()))
    if result.get("days_rebuilt"):
        rolled = "would be rolled up again" if result["dry_run"] else "rolled up again"
        click.echo(f"days {rolled}: {', '.join(result['days_rebuilt'])}")
    if result["dry_run"]:
        click.echo(DRY_RUN_HINT)


def _print_retention(result: dict[str, Any]) -> None:
    click.echo(f"settings: raw rows {_months(result['raw_months'])}, rollups "
               f"{_months(result['rollup_months'])}")
    print_table(("site", "raw", "rollups", "own", "raw since", "rollups since"),
                ((entry["site"], _months(entry["raw_months"]),
                  _months(entry["rollup_months"]), "yes" if entry["own"] else "no",
                  entry["raw_since"], entry["rollups_since"] or "-")
                 for entry in result["sites"]),
                empty="no site yet")


def _print_audit(result: dict[str, Any]) -> None:
    print_table(("at", "command", "scope", "rows", "bytes"),
                ((entry["at"], entry["command"], _scope(entry["scope"]),
                  f"{entry['rows']:,}", _size(entry["bytes"])) for entry in result["entries"]),
                empty="no purge or erasure recorded")


def _tiers_line(entry: dict[str, Any]) -> str:
    own = "" if entry["own"] else " (the settings')"
    rollups = f"since {entry['rollups_since']}" if entry["rollups_since"] else "forever"
    return (f"{entry['site']}{own}: raw rows {_months(entry['raw_months'])} (since "
            f"{entry['raw_since']}), rollups {_months(entry['rollup_months'])} ({rollups})")


def _scope(scope: dict[str, Any]) -> str:
    """A scope on one line: its given values, nested ones (a purge's sites) compactly."""
    parts = []
    for key, value in scope.items():
        if isinstance(value, dict):
            value = ",".join(f"{name}:{_compact(inner)}" for name, inner in value.items()) \
                or "-"
        if value is not None:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return "/".join(str(inner) for inner in value.values())
    return str(value)


def _months(months: int) -> str:
    return "forever" if months == 0 else f"{months} month{'' if months == 1 else 's'}"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


COMMANDS = [purge, erase, retention, audit]

"""``collector goals add | list | remove``: page-glob and custom-event goals per site."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, print_table, run

SITE_HELP = "The site the goal belongs to."


@click.group()
def goals() -> None:
    """Conversion goals: matching pageviews, or custom events."""


@goals.command()
@click.option("--site", required=True, help=SITE_HELP)
@click.option("--page", default=None, metavar="GLOB",
              help="Pageviews whose path matches (* one segment, ** any depth).")
@click.option("--event", default=None, metavar="NAME", help="A custom event name.")
@click.option("--name", default="", show_default=True,
              help="Display name (default: 'Visit GLOB' or the event name).")
@click.option("--currency", default=None, metavar="CODE",
              help="Make an --event goal a revenue goal: its events' revenue in this ISO 4217 "
                   "currency (EUR, USD...) is reported as total_revenue and average_revenue.")
@json_option
@click.pass_context
def add(ctx: click.Context, site: str, page: str | None, event: str | None, name: str,
        currency: str | None, as_json: bool) -> None:
    """Add a goal: give exactly one of --page and --event."""
    if (page is None) == (event is None):
        raise click.UsageError("give exactly one of --page GLOB and --event NAME")
    goal = run(ctx, "goals.add", {"site": site, "page": page, "event": event, "name": name,
                                  "currency": currency or ""})
    emit(goal, as_json, lambda goal: click.echo(
        f"{goal['site']}: goal {goal['name']!r} ({goal['kind']} {goal['pattern']}"
        + (f", revenue in {goal['currency']})" if goal["currency"] else ")")))


@goals.command("list")
@click.option("--site", required=True, help="The site whose goals to list.")
@json_option
@click.pass_context
def list_command(ctx: click.Context, site: str, as_json: bool) -> None:
    """List a site's goals."""
    emit(run(ctx, "goals.list", {"site": site}), as_json, _print_goals)


def _print_goals(result: dict[str, Any]) -> None:
    print_table(("name", "kind", "pattern", "currency"),
                ((goal["name"], goal["kind"], goal["pattern"], goal["currency"])
                 for goal in result["goals"]),
                empty=f"{result['site']} has no goals")


@goals.command()
@click.option("--site", required=True, help=SITE_HELP)
@click.argument("name")
@json_option
@click.pass_context
def remove(ctx: click.Context, site: str, name: str, as_json: bool) -> None:
    """Remove the goal called NAME."""
    emit(run(ctx, "goals.remove", {"site": site, "name": name}), as_json,
         lambda result: click.echo(f"{result['site']}: removed goal {result['name']!r}"))


COMMANDS = [goals]

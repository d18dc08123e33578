"""``collector salts status``: which days have a salt (never the salt itself)."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, run


@click.group()
def salts() -> None:
    """The daily salts of the visitor hash."""


@salts.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """List the days that have a salt.

    Salts past their time are destroyed first, as the running collector would.
    """
    emit(run(ctx, "salts.status"), as_json, _print_status)


def _print_status(result: dict[str, Any]) -> None:
    for day in result["destroyed_now"]:
        click.echo(f"{day}: expired salt destroyed now")
    for day in result["days"]:
        click.echo(f"{day}: salt present (kept until the end of the next UTC day)")
    if not result["days"]:
        click.echo("no salts stored (one is created with the first event of each UTC day)")


COMMANDS = [salts]

"""``collector migrate`` and ``collector settings``."""

from __future__ import annotations

import time
from typing import Any

import click

from collector.cli.output import emit, json_option, run, settings_from_context
from collector.settings import documented_settings


@click.command()
@json_option
@click.pass_context
def migrate(ctx: click.Context, as_json: bool) -> None:
    """Apply pending schema migrations.

    `collector serve` and every command that uses the store apply them first too.
    """
    started_ms = int(time.time() * 1000)
    result = run(ctx, "migrate.apply")
    applied = [migration["name"] for migration in result["migrations"]
               if migration["applied_ms"] >= started_ms]
    latest = max((migration["version"] for migration in result["migrations"]), default=0)
    emit({"applied_now": applied, "version": latest, **result}, as_json,
         lambda _: click.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}"
                              if applied else "schema is up to date"))


@click.command()
@click.option("--markdown", is_flag=True, default=False, show_default=True,
              help="As a Markdown table (the one in README.md).")
@json_option
@click.pass_context
def settings(ctx: click.Context, markdown: bool, as_json: bool) -> None:
    """List every COLLECTOR_* setting with its default and meaning."""
    settings_from_context(ctx)  # a bad setting fails here, as for every command
    rows = [{"variable": name, "default": default, "help": help_text}
            for name, default, help_text in documented_settings()]
    emit({"settings": rows}, as_json, lambda _: _print_settings(rows, markdown))


def _print_settings(rows: list[dict[str, Any]], markdown: bool) -> None:
    if markdown:
        click.echo("| variable | default | meaning |\n|---|---|---|")
        for row in rows:
            default = f" `{row['default']}` " if row["default"] else " "
            click.echo(f"| `{row['variable']}` |{default}| {row['help']} |")
    else:
        for row in rows:
            click.echo(f"{row['variable']}={row['default']}\n    {row['help']}")


COMMANDS = [migrate, settings]

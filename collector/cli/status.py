"""``collector status``: is a server running on this data directory, and how is it doing."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, run


@click.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show who serves this data directory, since when.

    The pid, version, uptime, store and write backlog of the running server: with the
    embedded engine the running `collector serve` answers through its admin channel.
    With none running (or a ClickHouse server) the store is read directly.
    """
    emit(run(ctx, "server.status"), as_json, _print_status)


def _print_status(result: dict[str, Any]) -> None:
    if result["ran_in"] == "server":
        click.echo(f"collector {result['version']} serving, pid {result['pid']}, "
                   f"up {_duration(result['uptime_seconds'])}")
        click.echo(f"admin channel: {result['admin_socket']}")
    elif result["embedded"]:
        click.echo(f"collector {result['version']}: no `collector serve` runs on this data "
                   "directory; the store was opened directly")
    else:
        click.echo(f"collector {result['version']}: a ClickHouse server store, which "
                   "commands open directly (running servers are not asked)")
    click.echo(f"store: {result['store']}")
    click.echo(f"buffered rows: {result['buffered_rows']}")
    click.echo(f"spooled batches: {result['spooled_batches']}")


def _duration(seconds: float) -> str:
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    parts = [f"{days}d"] if days else []
    if days or hour:
        parts.append(f"{hour}h")
    if days or hours or minute:
        parts.append(f"{minute}m")
    parts.append(f"{second}s")
    return " ".join(parts)


COMMANDS = [status]

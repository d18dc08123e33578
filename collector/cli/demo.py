"""``collector demo --site demo.example --events 10000000 --days 90``: synthetic traffic."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, run


@click.command()
@click.option("--site", default="demo.example", show_default=True,
              help="The site the traffic is written for.")
@click.option("--events", type=click.IntRange(min=1), default=1_000_000, show_default=True,
              help="About how many events to write.")
@click.option("--days", type=click.IntRange(min=1), default=90, show_default=True,
              help="Spread over this many days up to now.")
@click.option("--seed", type=int, default=1, show_default=True,
              help="Same seed, same traffic.")
@json_option
@click.pass_context
def demo(ctx: click.Context, site: str, events: int, days: int, seed: int,
         as_json: bool) -> None:
    """Write realistic synthetic traffic for a site.

    Written inside ClickHouse at several hundred thousand events a second; a progress
    bar shows on a terminal.
    """
    result = run(ctx, "demo.generate",
                 {"site": site, "events": events, "days": days, "seed": seed})
    emit(result, as_json, _print_result)


def _print_result(result: dict[str, Any]) -> None:
    click.echo(f"{result['site']}: {result['events']:,} events in {result['visits']:,} visits "
               f"over {result['days']} days, {result['seconds']:.1f} s "
               f"({result['events_per_second']:,} events/s)")


COMMANDS = [demo]

"""``collector demo --site demo.example --events 10000000 --days 90``: synthetic traffic."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from collector.cli.common import opened_store
from collector.reports.demo import generate, progress_bar
from collector.settings import Settings
from collector.sites import normalize_domain


def register(commands: Any) -> None:
    demo = commands.add_parser("demo", help="write realistic synthetic traffic for a site")
    demo.add_argument("--site", default="demo.example")
    demo.add_argument("--events", type=int, default=1_000_000)
    demo.add_argument("--days", type=int, default=90)
    demo.add_argument("--seed", type=int, default=1, help="same seed, same traffic")
    demo.set_defaults(handler=run_demo)


def run_demo(settings: Settings, arguments: argparse.Namespace) -> int:
    site = normalize_domain(arguments.site, "site")
    if arguments.events < 1 or arguments.days < 1:
        print("collector: --events and --days must be positive", file=sys.stderr)
        return 1
    with opened_store(settings) as store:
        result = generate(store, site, arguments.events, arguments.days, arguments.seed,
                          progress=progress_bar)
    print(f"\n{site}: {result.events:,} events in {result.visits:,} visits over "
          f"{arguments.days} days, {result.seconds:.1f} s ({result.events_per_second:,.0f} "
          "events/s)")
    return 0

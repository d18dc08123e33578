"""``collector salts status``: which days have a salt (never the salt itself)."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.common import opened_store
from collector.privacy import SaltKeeper
from collector.settings import Settings


def register(commands: Any) -> None:
    salts = commands.add_parser("salts", help="inspect the daily visitor-hash salts")
    actions = salts.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("status", help="list the days that have a salt").set_defaults(
        handler=run_status)


def run_status(settings: Settings, arguments: argparse.Namespace) -> int:
    with opened_store(settings) as store:
        keeper = SaltKeeper(store)
        destroyed = keeper.rotate()
        days = keeper.days_with_salts()
    for day in destroyed:
        print(f"{day}: expired salt destroyed now")
    for day in days:
        print(f"{day}: salt present (kept until the end of the next UTC day)")
    if not days:
        print("no salts stored (one is created with the first event of each UTC day)")
    return 0

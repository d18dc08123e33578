"""``collector`` command line: thin over library functions, one module per command group.

Each module exposes ``register(subparsers)``, adding its commands with a
``handler(settings, arguments) -> int`` default. Known failures print one line
and exit 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from collector.errors import CollectorError
from collector.logs import configure_logging
from collector.settings import Settings

COMMAND_MODULES = ("serve", "admin", "sites", "salts", "lists", "keys", "goals", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collector", description="Privacy-first web analytics collector.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"collector.cli.{name}").register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)  # long steps (a migration's backfill) report
        return int(arguments.handler(settings, arguments) or 0)
    except CollectorError as error:
        print(f"collector: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""``collector`` command line, on click: thin over operations, one module per command group.

Each module in ``COMMAND_MODULES`` exposes ``COMMANDS``, the click commands (or groups)
it adds. A command parses its options, runs an operation (``output.run``) and prints
its result, or its JSON with ``--json``. Exit codes: 0 done, 1 failed (one line on
stderr, the traceback only with ``--debug``), 2 a usage mistake.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import click

from collector import __version__
from collector.cli.output import CliState
from collector.errors import CollectorError

COMMAND_MODULES = ("serve", "admin", "sites", "salts", "lists", "keys", "goals", "demo",
                   "status", "data", "retention", "copy")
EXIT_FAILURE = 1
EXIT_INTERRUPTED = 130


class CollectorGroup(click.Group):
    """The root group: turns failures into one line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug"))
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # usage mistakes (exit 2), --help and --version: click's own handling
        except KeyboardInterrupt:
            click.echo("collector: interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)
        except CollectorError as error:
            if debug:
                raise
            fail(ctx, str(error))
        except Exception as error:
            if debug:
                raise
            fail(ctx, f"unexpected {type(error).__name__}: {error} "
                      "(run with --debug for the traceback)")


def fail(ctx: click.Context, message: str) -> None:
    """Print ``message`` as one line on stderr and exit 1."""
    one_line = " ".join(line.strip() for line in message.splitlines() if line.strip())
    click.echo(f"collector: {one_line}", err=True)
    ctx.exit(EXIT_FAILURE)


def package_version() -> str:
    """The installed distribution's version, or the source tree's when not installed."""
    try:
        return version("collector")
    except PackageNotFoundError:
        return __version__


@click.group("collector", cls=CollectorGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"], "show_default": True,
                               "max_content_width": 100})
@click.version_option(package_version(), "--version", prog_name="collector",
                      message="%(prog)s %(version)s", help="Print the version and exit.")
@click.option("--debug", is_flag=True, default=False, show_default=True,
              help="Print the full traceback of a failure instead of one line.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """Privacy-first web analytics collector.

    Start it with `collector serve`; every other command works the same whether the
    server runs or not. Settings are COLLECTOR_* variables (`collector settings`).
    """
    ctx.ensure_object(CliState).debug = debug
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _module in COMMAND_MODULES:
    for _command in importlib.import_module(f"collector.cli.{_module}").COMMANDS:
        cli.add_command(_command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on ``argv`` (default: the process arguments); the exit code."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="collector")
    except SystemExit as exit_:
        if exit_.code is None or isinstance(exit_.code, int):
            return exit_.code or 0
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())

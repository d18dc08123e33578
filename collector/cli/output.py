"""What every command shares: settings, running an operation, progress, JSON or text output.

A command parses its options, calls ``run(ctx, "group.action", params)`` and hands the
result to ``emit``: with ``--json`` the result itself is printed (its keys are the stable
interface for scripts), otherwise ``render`` draws it for a person. Progress goes to
stderr and only to a terminal, so it never mixes into output a script reads.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.progress import Progress as ProgressBar
from rich.table import Table
from rich.text import Text

from collector.logs import configure_logging
from collector.operations import Progress
from collector.operations.runner import run_operation
from collector.settings import Settings

Decorated = TypeVar("Decorated", bound=Callable[..., Any])

# Wide enough that a table piped to a file or `grep` keeps each row on one line.
PIPED_WIDTH = 200


@dataclass
class CliState:
    """The root command's options, and the settings read once per invocation."""

    debug: bool = False
    settings: Settings | None = None


def json_option(function: Decorated) -> Decorated:
    """Add ``--json``: print the result as JSON with stable keys instead of text."""
    return click.option("--json", "as_json", is_flag=True, default=False, show_default=True,
                        help="Print the result as JSON (stable keys, for scripts).")(function)


def settings_from_context(ctx: click.Context) -> Settings:
    """The ``COLLECTOR_*`` settings, read and checked once, logging configured from them."""
    state = ctx.find_root().ensure_object(CliState)
    if state.settings is None:
        state.settings = Settings.from_env()
        # Long steps (a backfill) report.
        configure_logging(state.settings.log_level, state.settings.log_format)
    return state.settings


def run(ctx: click.Context, name: str, params: dict[str, Any] | None = None, *,
        output: BinaryIO | None = None) -> Any:
    """Run operation ``name``, here or in the running server, with a progress bar on a
    terminal; its notes (warnings for the operator) go to stderr, one line each."""
    settings = settings_from_context(ctx)
    notes: list[str] = []
    try:
        with progress_reporter() as progress:
            return run_operation(settings, name, params or {}, progress=progress,
                                 output=output, notes=notes)
    finally:
        for note in notes:
            click.echo(f"collector: {note}", err=True)


def emit(result: Any, as_json: bool, render: Callable[[Any], None]) -> None:
    """Print ``result`` as JSON, or let ``render`` draw it for a person."""
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
    else:
        render(result)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[object]],
                empty: str = "") -> None:
    """A table with a header row; ``empty`` instead when there are no rows.

    Bold headers on a terminal, plain text otherwise; no line ends in padding.
    """
    table = Table(*columns, box=None, pad_edge=False, header_style="bold")
    for row in rows:
        # Text, not str: a value such as "[x]" must print as itself, not as rich markup.
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    if not table.row_count and empty:
        click.echo(empty)
        return
    terminal = sys.stdout.isatty()  # click 8.5 deprecates get_text_stream
    drawn = io.StringIO()
    width = shutil.get_terminal_size((PIPED_WIDTH, 24)).columns if terminal else PIPED_WIDTH
    Console(file=drawn, force_terminal=terminal, width=width, highlight=False).print(table)
    for line in drawn.getvalue().splitlines():
        click.echo(line.rstrip())


@contextmanager
def progress_reporter(console: Console | None = None) -> Iterator[Progress]:
    """A ``Progress`` callable drawing a bar on stderr when it is a terminal, silent otherwise."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield _silent
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn())
    with ProgressBar(*columns, console=console, transient=True) as bar:
        task = bar.add_task("", total=None)

        def report(done: int, total: int, label: str) -> None:
            # total 0: not known yet, drawn as a pulsing bar.
            bar.update(task, completed=done, total=total or None, description=label)

        yield report


def _silent(done: int, total: int, label: str) -> None:
    pass

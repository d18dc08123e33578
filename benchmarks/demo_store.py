"""What the report and storage benchmarks share: their options and a fresh demo store."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from collector.storage import Store, migrate, open_store


def demo_arguments(description: str) -> argparse.ArgumentParser:
    """A parser with the demo size options (--events, --days, --data-dir)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="embedded data directory (default: a fresh temporary one)")
    return parser


def open_demo_store(arguments: argparse.Namespace, prefix: str, database: str) -> Store:
    """A migrated store in ``--data-dir``, or in a fresh temporary directory."""
    directory = arguments.data_dir or Path(tempfile.mkdtemp(prefix=prefix))
    store = open_store(f"chdb://{directory}", database)
    migrate(store)
    return store

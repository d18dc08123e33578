"""``collector migrate`` and ``collector settings``."""

from __future__ import annotations

import argparse
from typing import Any

from collector.settings import Settings, documented_settings
from collector.storage import open_store
from collector.storage.migrations import migrate


def register(commands: Any) -> None:
    migrate_command = commands.add_parser("migrate", help="apply pending schema migrations")
    migrate_command.set_defaults(handler=run_migrate)
    settings_command = commands.add_parser("settings", help="list every COLLECTOR_* setting")
    settings_command.add_argument("--markdown", action="store_true", help="as a Markdown table")
    settings_command.set_defaults(handler=show_settings)


def run_migrate(settings: Settings, arguments: argparse.Namespace) -> int:
    store = open_store(settings.store_url)
    try:
        applied = migrate(store, settings.retention_months)
    finally:
        store.close()
    print(f"applied {len(applied)} migration(s): {', '.join(applied)}" if applied
          else "schema is up to date")
    return 0


def show_settings(settings: Settings, arguments: argparse.Namespace) -> int:
    rows = documented_settings()
    if arguments.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for name, default, help_text in rows:
            print(f"| `{name}` | `{default}` | {help_text} |" if default
                  else f"| `{name}` | | {help_text} |")
    else:
        for name, default, help_text in rows:
            print(f"{name}={default}\n    {help_text}")
    return 0


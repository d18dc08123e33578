"""Helpers shared by CLI commands."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from collector.settings import Settings
from collector.storage import Store, migrate, open_store


@contextmanager
def opened_store(settings: Settings) -> Iterator[Store]:
    """The configured store, migrated; refuses clearly when a running server owns it."""
    store = open_store(settings.store_url)
    try:
        migrate(store, settings.retention_months)
        yield store
    finally:
        store.close()

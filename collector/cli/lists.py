"""``collector geoip update`` and ``collector lists update``: refresh downloaded data files.

They write files in the data directory and never touch the store, so they run here
even while a server runs (which reloads the new file within a minute) and need no
store to be reachable.
"""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, progress_reporter, settings_from_context
from collector.enrich import (
    DBIP_ATTRIBUTION,
    MATOMO_SPAM_LIST_URL,
    update_geoip_database,
    update_spam_list,
)
from collector.enrich.download import DownloadProgress
from collector.operations import Progress


def _bytes_progress(progress: Progress) -> DownloadProgress:
    return lambda done, total: progress(done, total, "downloading (bytes)")


@click.group()
def geoip() -> None:
    """The IP-to-country database."""


@geoip.command("update")
@click.option("--url", default=None, metavar="ADDRESS",
              help="Download a .mmdb or .mmdb.gz from this address instead of DB-IP Lite's "
                   "monthly file; a local file works too.")
@json_option
@click.pass_context
def geoip_update(ctx: click.Context, url: str | None, as_json: bool) -> None:
    """Download the free DB-IP Lite country database.

    It is checked before it replaces the one in the data directory.
    """
    settings = settings_from_context(ctx)
    with progress_reporter() as progress:
        path = update_geoip_database(settings.data_dir, url, progress=_bytes_progress(progress))
    emit({"path": str(path), "attribution": DBIP_ATTRIBUTION}, as_json, _print_geoip)


def _print_geoip(result: dict[str, Any]) -> None:
    click.echo(f"installed {result['path']}\n{result['attribution']}\n"
               "a collector already using this file reloads it within a minute; "
               "one started without a geo database needs a restart")


@click.group("lists")
def lists_group() -> None:
    """Downloaded lists (referrer spam)."""


@lists_group.command("update")
@click.option("--url", default=MATOMO_SPAM_LIST_URL, show_default=True, metavar="ADDRESS",
              help="Download from this address instead; a local file works too.")
@json_option
@click.pass_context
def lists_update(ctx: click.Context, url: str, as_json: bool) -> None:
    """Download the community referrer-spam list.

    Installed in the data directory (COLLECTOR_SPAM_LIST to put it elsewhere).
    """
    settings = settings_from_context(ctx)
    with progress_reporter() as progress:
        count = update_spam_list(settings.spam_list_path, url,
                                 progress=_bytes_progress(progress))
    emit({"hosts": count, "path": str(settings.spam_list_path)}, as_json,
         lambda result: click.echo(f"{result['hosts']} referrer-spam hosts in {result['path']} "
                                   "(a running collector reloads it within a minute)"))


COMMANDS = [geoip, lists_group]

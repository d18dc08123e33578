"""``collector geoip update`` and ``collector lists update``: refresh downloaded data."""

from __future__ import annotations

import argparse
from typing import Any

from collector.enrich import (
    DBIP_ATTRIBUTION,
    MATOMO_SPAM_LIST_URL,
    update_geoip_database,
    update_spam_list,
)
from collector.settings import Settings


def register(commands: Any) -> None:
    geoip = commands.add_parser("geoip", help="manage the IP-to-country database")
    geoip_actions = geoip.add_subparsers(dest="action", metavar="ACTION", required=True)
    update = geoip_actions.add_parser("update", help="download the free DB-IP Lite country "
                                      "database into the data directory")
    update.add_argument("--url", help="download from this address instead (a .mmdb.gz)")
    update.set_defaults(handler=run_geoip_update)
    lists = commands.add_parser("lists", help="manage downloaded lists")
    list_actions = lists.add_subparsers(dest="action", metavar="ACTION", required=True)
    spam = list_actions.add_parser("update", help="download the community referrer-spam list")
    spam.add_argument("--url", default=MATOMO_SPAM_LIST_URL)
    spam.set_defaults(handler=run_lists_update)


def run_geoip_update(settings: Settings, arguments: argparse.Namespace) -> int:
    path = update_geoip_database(settings.data_dir, arguments.url)
    print(f"installed {path}\n{DBIP_ATTRIBUTION}\n"
          "a collector already using this file reloads it within a minute; "
          "one started without a geo database needs a restart")
    return 0


def run_lists_update(settings: Settings, arguments: argparse.Namespace) -> int:
    count = update_spam_list(settings.spam_list_path, arguments.url)
    print(f"{count} referrer-spam hosts in {settings.spam_list_path} "
          "(a running collector reloads it within a minute)")
    return 0

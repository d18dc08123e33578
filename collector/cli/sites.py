"""``collector sites add | list | remove | exclude``."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.common import opened_store
from collector.settings import Settings
from collector.sites import add_site, list_sites, remove_site, set_exclusions


def register(commands: Any) -> None:
    sites = commands.add_parser("sites", help="manage the site allow-list")
    actions = sites.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="accept events for a domain")
    add.add_argument("domain")
    add.add_argument("--timezone", default="UTC", help="IANA timezone for reports (default UTC)")
    add.set_defaults(handler=run_add)
    actions.add_parser("list", help="list accepted sites").set_defaults(handler=run_list)
    remove = actions.add_parser("remove", help="stop accepting events for a domain")
    remove.add_argument("domain")
    remove.set_defaults(handler=run_remove)
    exclude = actions.add_parser("exclude", help="set a site's excluded IP ranges and paths")
    exclude.add_argument("domain")
    exclude.add_argument("--ip", action="append", default=[], metavar="CIDR")
    exclude.add_argument("--path", action="append", default=[], metavar="GLOB")
    exclude.set_defaults(handler=run_exclude)


def run_add(settings: Settings, arguments: argparse.Namespace) -> int:
    with opened_store(settings) as store:
        site = add_site(store, arguments.domain, arguments.timezone)
    print(f"added {site.domain} (timezone {site.timezone})")
    return 0


def run_list(settings: Settings, arguments: argparse.Namespace) -> int:
    with opened_store(settings) as store:
        sites = list_sites(store)
    for site in sites:
        excluded = [str(network) for network in site.exclude_ips] + list(site.exclude_paths)
        print(f"{site.domain}\t{site.timezone}\t{' '.join(excluded) or '-'}")
    for domain in settings.sites:
        print(f"{domain}\t(from COLLECTOR_SITES)")
    if not sites and not settings.sites:
        print("no sites: every domain is accepted (dev mode)")
    return 0


def run_remove(settings: Settings, arguments: argparse.Namespace) -> int:
    with opened_store(settings) as store:
        removed = remove_site(store, arguments.domain)
    print(f"removed {arguments.domain}" if removed else f"{arguments.domain} was not a site")
    return 0 if removed else 1


def run_exclude(settings: Settings, arguments: argparse.Namespace) -> int:
    with opened_store(settings) as store:
        site = set_exclusions(store, arguments.domain, tuple(arguments.ip), tuple(arguments.path))
    print(f"{site.domain}: excluding {len(site.exclude_ips)} IP range(s), "
          f"{len(site.exclude_paths)} path pattern(s)")
    return 0

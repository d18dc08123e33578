"""``collector goals add | list | remove``: page-glob and custom-event goals per site."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.common import opened_store
from collector.reports.goals import EVENT, PAGE, add_goal, list_goals, remove_goal
from collector.settings import Settings
from collector.sites import normalize_domain


def register(commands: Any) -> None:
    goals = commands.add_parser("goals", help="conversion goals of a site")
    actions = goals.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a goal: --page GLOB or --event NAME")
    add.add_argument("--site", required=True)
    kind = add.add_mutually_exclusive_group(required=True)
    kind.add_argument("--page", help="pageviews whose path matches (* one segment, ** any)")
    kind.add_argument("--event", help="a custom event name")
    add.add_argument("--name", default="", help="display name (default: derived)")
    add.set_defaults(handler=run_add)
    listing = actions.add_parser("list", help="list a site's goals")
    listing.add_argument("--site", required=True)
    listing.set_defaults(handler=run_list)
    remove = actions.add_parser("remove", help="remove a goal by name")
    remove.add_argument("--site", required=True)
    remove.add_argument("name")
    remove.set_defaults(handler=run_remove)


def run_add(settings: Settings, arguments: argparse.Namespace) -> int:
    site = normalize_domain(arguments.site, "site")
    kind, pattern = (PAGE, arguments.page) if arguments.page else (EVENT, arguments.event)
    with opened_store(settings) as store:
        goal = add_goal(store, site, kind, pattern, arguments.name)
    print(f"{site}: goal {goal.name!r} ({goal.kind} {goal.pattern})")
    return 0


def run_list(settings: Settings, arguments: argparse.Namespace) -> int:
    site = normalize_domain(arguments.site, "site")
    with opened_store(settings) as store:
        goals = list_goals(store, site)
    for goal in goals:
        print(f"{goal.name}\t{goal.kind}\t{goal.pattern}")
    if not goals:
        print(f"{site} has no goals")
    return 0


def run_remove(settings: Settings, arguments: argparse.Namespace) -> int:
    site = normalize_domain(arguments.site, "site")
    with opened_store(settings) as store:
        removed = remove_goal(store, site, arguments.name)
    print(f"removed {arguments.name!r}" if removed else f"{site} has no goal {arguments.name!r}")
    return 0 if removed else 1

"""``collector keys create | list | revoke | threshold``: report API access per site."""

from __future__ import annotations

import argparse
from typing import Any

from collector.cli.common import opened_store
from collector.reports.auth import API_KEY, SHARE, create_key, list_keys, revoke_key
from collector.reports.thresholds import set_thresholds, thresholds
from collector.settings import Settings
from collector.sites import normalize_domain


def register(commands: Any) -> None:
    keys = commands.add_parser("keys", help="API keys and share tokens for the reports API")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key (shown once; only its hash is kept)")
    create.add_argument("--site", required=True)
    create.add_argument("--share", action="store_true",
                        help="a public read-only share token (stricter k-threshold)")
    create.add_argument("--label", default="", help="a note to recognise the key by")
    create.set_defaults(handler=run_create)
    listing = actions.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--site", default=None)
    listing.set_defaults(handler=run_list)
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=run_revoke)
    threshold = actions.add_parser(
        "threshold", help="show or set the minimum visitors per breakdown row (k)")
    threshold.add_argument("--site", required=True)
    threshold.add_argument("--k", type=int, default=None, help="for API-key holders")
    threshold.add_argument("--public-k", type=int, default=None, help="for share tokens")
    threshold.set_defaults(handler=run_threshold)


def run_create(settings: Settings, arguments: argparse.Namespace) -> int:
    site = normalize_domain(arguments.site, "site")
    with opened_store(settings) as store:
        token = create_key(store, site, SHARE if arguments.share else API_KEY, arguments.label)
    kind = "share token" if arguments.share else "API key"
    print(f"{kind} for {site} (shown once, store it now):\n{token}")
    return 0


def run_list(settings: Settings, arguments: argparse.Namespace) -> int:
    site = normalize_domain(arguments.site, "site") if arguments.site else None
    with opened_store(settings) as store:
        keys = list_keys(store, site)
    for key in keys:
        state = "revoked" if key.revoked else "active"
        print(f"{key.key_id}\t{key.site}\t{key.kind}\t{state}\t{key.label or '-'}")
    if not keys:
        print("no keys")
    return 0


def run_revoke(settings: Settings, arguments: argparse.Namespace) -> int:
    with opened_store(settings) as store:
        revoked = revoke_key(store, arguments.key_id)
    print(f"revoked {arguments.key_id}" if revoked else f"no key {arguments.key_id}")
    return 0 if revoked else 1


def run_threshold(settings: Settings, arguments: argparse.Namespace) -> int:
    site = normalize_domain(arguments.site, "site")
    with opened_store(settings) as store:
        current = thresholds(store, site)
        if arguments.k is not None or arguments.public_k is not None:
            current = set_thresholds(store, site,
                                     current.k if arguments.k is None else arguments.k,
                                     current.public_k if arguments.public_k is None
                                     else arguments.public_k)
    print(f"{site}: k={current.k} for API keys, k={current.public_k} for share tokens")
    return 0

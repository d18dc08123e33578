"""``collector keys create | list | revoke | threshold``: access to the reports API."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, print_table, run

KINDS = {"api": "API key", "share": "share token"}


@click.group()
def keys() -> None:
    """API keys and public share tokens for the reports API."""


@keys.command()
@click.option("--site", required=True,
              help="The site the key reads (must be a site when an allow-list exists).")
@click.option("--share", is_flag=True, default=False, show_default=True,
              help="A public read-only share token (stricter k-threshold) instead of an "
                   "API key.")
@click.option("--label", default="", show_default=True,
              help="A note to recognise the key by in `keys list`.")
@click.option("--embed-origin", "embed_origins", multiple=True, metavar="ORIGIN",
              help="With --share: an origin (https://blog.example) whose pages may embed the "
                   "share link's dashboard in a frame; repeat for several. Default: none.")
@json_option
@click.pass_context
def create(ctx: click.Context, site: str, share: bool, label: str,
           embed_origins: tuple[str, ...], as_json: bool) -> None:
    """Create an API key or share token for a site.

    The key is shown once (only its hash is kept), alone on the last line, so
    KEY=$(collector keys create --site example.com | tail -1) holds it. An API key
    signs in to the dashboard at /login; a share token opens /share/<token>.
    """
    key = run(ctx, "keys.create", {"site": site, "share": share, "label": label,
                                   "embed_origins": list(embed_origins)})
    emit(key, as_json, _print_created)


def _print_created(key: dict[str, Any]) -> None:
    opens = "its dashboard: /share/<token>" if key["kind"] == "share" else "sign in at /login"
    click.echo(f"{KINDS[key['kind']]} {key['key_id']} for {key['site']} ({opens}; "
               f"shown once, store it now):\n{key['key']}")


@keys.command("list")
@click.option("--site", default=None, help="Only this site's keys (default: every site).")
@json_option
@click.pass_context
def list_command(ctx: click.Context, site: str | None, as_json: bool) -> None:
    """List keys with their creation date and state.

    Never their secrets: only a hash of each is stored.
    """
    emit(run(ctx, "keys.list", {"site": site}), as_json, _print_keys)


def _print_keys(result: dict[str, Any]) -> None:
    print_table(("id", "site", "kind", "created (UTC)", "state", "label"),
                ((key["key_id"], key["site"], key["kind"],
                  key["created"].replace("T", " ").removesuffix("Z"),
                  "revoked" if key["revoked"] else "active", key["label"] or "-")
                 for key in result["keys"]),
                empty="no keys")


@keys.command()
@click.argument("key_id")
@json_option
@click.pass_context
def revoke(ctx: click.Context, key_id: str, as_json: bool) -> None:
    """Revoke the key KEY_ID; it stops working at once.

    KEY_ID is the id `keys list` shows (the part after ck_ or cs_).
    """
    emit(run(ctx, "keys.revoke", {"key_id": key_id}), as_json,
         lambda key: click.echo(f"revoked {key['key_id']} ({KINDS[key['kind']]} for "
                                f"{key['site']})"))


@keys.command()
@click.option("--site", required=True, help="The site whose thresholds to show or set.")
@click.option("--k", type=click.IntRange(1, 1000), default=None,
              help="Minimum visitors per breakdown row for API-key holders (default: keep).")
@click.option("--public-k", type=click.IntRange(1, 1000), default=None,
              help="Minimum visitors per breakdown row for share tokens (default: keep).")
@json_option
@click.pass_context
def threshold(ctx: click.Context, site: str, k: int | None, public_k: int | None,
              as_json: bool) -> None:
    """Show or set a site's k-thresholds.

    Breakdown rows seen by fewer than k visitors fold into (other).
    """
    if k is None and public_k is None:
        result = run(ctx, "thresholds.show", {"site": site})
    else:
        result = run(ctx, "thresholds.set", {"site": site, "k": k, "public_k": public_k})
    emit(result, as_json, lambda current: click.echo(
        f"{current['site']}: k={current['k']} for API keys, "
        f"k={current['public_k']} for share tokens"))


COMMANDS = [keys]

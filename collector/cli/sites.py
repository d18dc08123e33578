"""``collector sites add | list | remove | exclude | privacy``: the site allow-list, and
each site's privacy budget for share links."""

from __future__ import annotations

from typing import Any

import click

from collector.cli.output import emit, json_option, print_table, run
from collector.cli.retention import print_removal

DEV_MODE = "no sites: every domain is accepted (dev mode)"


@click.group()
def sites() -> None:
    """The sites whose events are accepted, and what each excludes."""


@sites.command()
@click.argument("domain")
@click.option("--timezone", default="UTC", show_default=True,
              help="IANA timezone of the site's reports (days and hours).")
@json_option
@click.pass_context
def add(ctx: click.Context, domain: str, timezone: str, as_json: bool) -> None:
    """Accept events for DOMAIN.

    DOMAIN is a domain or an address on the site (https://Shop.Example.com/ is
    shop.example.com). An existing site gets the new timezone.
    """
    site = run(ctx, "sites.add", {"domain": domain, "timezone": timezone})
    emit(site, as_json,
         lambda site: click.echo(f"added {site['domain']} (timezone {site['timezone']})"))


@sites.command("list")
@json_option
@click.pass_context
def list_command(ctx: click.Context, as_json: bool) -> None:
    """List the accepted sites, stored and from COLLECTOR_SITES."""
    emit(run(ctx, "sites.list"), as_json, _print_sites)


def _print_sites(result: dict[str, Any]) -> None:
    print_table(("domain", "timezone", "excluded IPs", "excluded paths", "source"),
                ((site["domain"], site["timezone"], " ".join(site["exclude_ips"]) or "-",
                  " ".join(site["exclude_paths"]) or "-", site["source"])
                 for site in result["sites"]),
                empty=DEV_MODE)


@sites.command()
@click.argument("domain")
@click.option("--force", is_flag=True, default=False, show_default=True,
              help="Remove the last site even though the collector then accepts every "
                   "domain (dev mode).")
@click.option("--erase", is_flag=True, default=False, show_default=True,
              help="Also erase all of the site's data, raw and rollups (a dry run "
                   "without --yes).")
@click.option("--yes", is_flag=True, default=False, show_default=True,
              help="With --erase: really erase, and remove the site.")
@json_option
@click.pass_context
def remove(ctx: click.Context, domain: str, force: bool, erase: bool, yes: bool,
           as_json: bool) -> None:
    """Stop accepting events for DOMAIN.

    Its data stays, unless --erase (a dry run without --yes) erases it all.
    """
    if erase and not yes:  # show what would go; the site stays until --yes
        emit(run(ctx, "erase.site", {"site": domain, "yes": False}), as_json,
             print_removal)
        return
    # Removed first: a refusal (the last site without --force) erases nothing.
    result = run(ctx, "sites.remove", {"domain": domain, "force": force})
    if erase:
        result["erased"] = run(ctx, "erase.site", {"site": result["domain"], "yes": True})
    emit(result, as_json, _print_removed)


def _print_removed(result: dict[str, Any]) -> None:
    click.echo(f"removed {result['domain']}")
    if result["open_to_all"]:
        click.echo(f"{DEV_MODE}, until a site is added")
    if "erased" in result:
        print_removal(result["erased"])


@sites.command()
@click.argument("domain")
@click.option("--ip", "add_ips", multiple=True, metavar="CIDR", show_default=True,
              help="Exclude visitors from this IP range (repeatable); added to those "
                   "already excluded.")
@click.option("--path", "add_paths", multiple=True, metavar="GLOB", show_default=True,
              help="Exclude pages whose path matches this glob, e.g. '/admin/*' "
                   "(repeatable); added to those already excluded.")
@click.option("--remove-ip", "remove_ips", multiple=True, metavar="CIDR", show_default=True,
              help="Stop excluding this IP range (repeatable).")
@click.option("--remove-path", "remove_paths", multiple=True, metavar="GLOB",
              show_default=True, help="Stop excluding this path glob (repeatable).")
@click.option("--clear", is_flag=True, default=False, show_default=True,
              help="Drop every exclusion first (then add those given with --ip/--path).")
@json_option
@click.pass_context
def exclude(ctx: click.Context, domain: str, add_ips: tuple[str, ...],
            add_paths: tuple[str, ...], remove_ips: tuple[str, ...],
            remove_paths: tuple[str, ...], clear: bool, as_json: bool) -> None:
    """Add or remove DOMAIN's excluded IP ranges and paths.

    --ip and --path add to what is excluded, --remove-ip and --remove-path take away,
    --clear starts from nothing; with no option the exclusions are shown unchanged.
    Events from an excluded range or to an excluded path are dropped at ingest.
    """
    site = run(ctx, "sites.exclude", {
        "domain": domain, "add_ips": list(add_ips), "remove_ips": list(remove_ips),
        "add_paths": list(add_paths), "remove_paths": list(remove_paths), "clear": clear})
    emit(site, as_json, _print_exclusions)


@sites.command()
@click.argument("domain")
@click.option("--epsilon", type=click.FloatRange(0, 10, min_open=True), default=None,
              help="What each new answer to a share link spends, above 0 and at most 10 "
                   "(default: keep; 1 for a site never set).")
@click.option("--daily-epsilon", type=click.FloatRange(0, 1000, min_open=True), default=None,
              help="What one share link may spend per UTC day, at least --epsilon and at "
                   "most 1000 (default: keep; 30 for a site never set).")
@json_option
@click.pass_context
def privacy(ctx: click.Context, domain: str, epsilon: float | None,
            daily_epsilon: float | None, as_json: bool) -> None:
    """Show or set DOMAIN's privacy budget for share links.

    A share link's numbers carry calibrated noise (differential privacy): each new answer
    spends --epsilon, repeated answers nothing, and once a link has spent --daily-epsilon
    it answers 429 until midnight UTC. Smaller values protect visitors more and make the
    numbers noisier (docs/privacy.md). With no option the budget is shown unchanged.
    """
    if epsilon is None and daily_epsilon is None:
        result = run(ctx, "privacy.show", {"site": domain})
    else:
        result = run(ctx, "privacy.set", {"site": domain, "epsilon": epsilon,
                                          "epsilon_day": daily_epsilon})
    emit(result, as_json, _print_privacy)


def _print_privacy(result: dict[str, Any]) -> None:
    links = result["share_links"]
    spent = max((link["spent_today"] for link in links), default=0.0)
    click.echo(f"{result['site']}: share links see rows of at least {result['public_k']} "
               f"visitors, with noise: epsilon {result['epsilon']:g} per answer, "
               f"{result['epsilon_day']:g} per link and UTC day ({len(links)} active "
               f"link(s); the most spent today: {spent:g})")


def _print_exclusions(site: dict[str, Any]) -> None:
    ips, paths = site["exclude_ips"], site["exclude_paths"]
    click.echo(f"{site['domain']}: excluding {len(ips)} IP range(s)"
               + (f" ({' '.join(ips)})" if ips else "")
               + f", {len(paths)} path pattern(s)" + (f" ({' '.join(paths)})" if paths else ""))


COMMANDS = [sites]

"""Operations on the site allow-list: ``sites.add | list | remove | exclude``."""

from __future__ import annotations

from typing import Any

from collector.errors import InvalidField, NotFound
from collector.operations import OperationContext, operation
from collector.sites import (
    Site,
    add_site,
    change_exclusions,
    domain_of,
    list_sites,
    remove_site,
)


def site_json(site: Site) -> dict[str, Any]:
    return {"domain": site.domain, "timezone": site.timezone,
            "exclude_ips": [str(network) for network in site.exclude_ips],
            "exclude_paths": list(site.exclude_paths)}


def refresh_server(context: OperationContext) -> None:
    """Inside ``collector serve``: make the running app see a changed site, goal or
    threshold now instead of at its next periodic reload."""
    if context.server_state is not None:
        context.server_state.sites.reload()
        context.server_state.reports.site_contexts.forget()


@operation("sites.add")
def add(context: OperationContext, domain: str, timezone: str = "UTC") -> dict[str, Any]:
    site = add_site(context.store, domain, timezone)
    refresh_server(context)
    return site_json(site)


@operation("sites.list")
def list_all(context: OperationContext) -> dict[str, Any]:
    """Stored sites, then those of COLLECTOR_SITES; none at all means dev mode."""
    stored = [{**site_json(site), "source": "stored"} for site in list_sites(context.store)]
    stored_domains = {site["domain"] for site in stored}
    configured = [{"domain": domain, "timezone": "UTC", "exclude_ips": [], "exclude_paths": [],
                   "source": "COLLECTOR_SITES"}
                  for domain in context.settings.sites if domain not in stored_domains]
    return {"sites": stored + configured, "open_to_all": not stored and not configured}


@operation("sites.remove")
def remove(context: OperationContext, domain: str, force: bool = False) -> dict[str, Any]:
    """Stop accepting ``domain``; refused, unless forced, when it is the last site, since
    no site at all means every domain is accepted."""
    domain = domain_of(domain)
    stored = {site.domain for site in list_sites(context.store)}
    if domain not in stored:
        where = " (it is set in COLLECTOR_SITES)" if domain in context.settings.sites else ""
        raise NotFound(f"{domain} is not a stored site{where}", "domain")
    last = stored == {domain} and not context.settings.sites
    if last and not force:
        raise InvalidField(
            f"{domain} is the last site: without it the collector accepts events for every "
            "domain (dev mode); add another site first, or repeat with --force", "domain")
    remove_site(context.store, domain)
    refresh_server(context)
    return {"domain": domain, "removed": True, "open_to_all": last}


@operation("sites.exclude")
def exclude(context: OperationContext, domain: str, add_ips: list[str] | None = None,
            remove_ips: list[str] | None = None, add_paths: list[str] | None = None,
            remove_paths: list[str] | None = None, clear: bool = False) -> dict[str, Any]:
    """Change the site's excluded IP ranges and path globs (nothing given: show them)."""
    site = change_exclusions(
        context.store, domain, add_ips=tuple(add_ips or ()), remove_ips=tuple(remove_ips or ()),
        add_paths=tuple(add_paths or ()), remove_paths=tuple(remove_paths or ()), clear=clear)
    refresh_server(context)
    return site_json(site)

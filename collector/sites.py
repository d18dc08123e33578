"""The site allow-list and per-site settings (timezone, exclusions), cached in memory.

Sites come from ``COLLECTOR_SITES`` and from the ``sites`` table
(``collector sites add``). ``SiteRegistry.reload`` runs in the background
(``collector.maintenance``), never on the request path, so that several
collectors sharing a server converge within seconds.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import time
from dataclasses import dataclass, field
from fnmatch import translate
from functools import lru_cache
from urllib.parse import urlsplit

from collector.errors import InvalidField
from collector.privacy.urls import normalize_host
from collector.settings import IPNetwork
from collector.storage import Store

_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


@dataclass(frozen=True)
class Site:
    domain: str
    timezone: str = "UTC"
    exclude_ips: tuple[IPNetwork, ...] = ()
    exclude_paths: tuple[str, ...] = ()
    _path_pattern: re.Pattern[str] | None = field(default=None, compare=False, repr=False)

    def excludes(self, ip: str, pathname: str) -> bool:
        """True when the site owner excluded this address range or path."""
        if self._path_pattern is not None and self._path_pattern.match(pathname):
            return True
        if self.exclude_ips:
            try:
                address = ipaddress.ip_address(ip)
            except ValueError:
                return False
            return any(address in network for network in self.exclude_ips)
        return False


@lru_cache(maxsize=1024)
def _dev_mode_site(domain: str) -> Site:
    return make_site(domain)


def make_site(domain: str, timezone: str = "UTC", exclude_ips: tuple[str, ...] = (),
              exclude_paths: tuple[str, ...] = ()) -> Site:
    networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in exclude_ips)
    pattern = re.compile("|".join(translate(glob) for glob in exclude_paths)) \
        if exclude_paths else None
    return Site(domain, timezone, networks, tuple(exclude_paths), pattern)


@lru_cache(maxsize=4096)
def normalize_domain(domain: str, field_name: str = "domain") -> str:
    cleaned = normalize_host(domain.strip())
    if not _DOMAIN.match(cleaned):
        raise InvalidField(f"{domain!r} is not a domain name", field_name)
    return cleaned


def domain_of(text: str, field_name: str = "domain") -> str:
    """The site an operator means by ``text``: a domain, or an address on the site
    (``https://Shop.Example.com/`` is ``shop.example.com``)."""
    text = text.strip()
    try:
        host = urlsplit(text if "://" in text else f"//{text}").hostname
    except ValueError:  # an unbalanced "[" or a port out of range
        host = None
    if not host or not _DOMAIN.match(normalize_host(host)):
        raise InvalidField(f"{text!r} is not a domain name", field_name)
    return normalize_domain(host, field_name)


class SiteRegistry:
    def __init__(self, store: Store, configured: tuple[str, ...] = ()) -> None:
        self._store = store
        self._configured = tuple(normalize_domain(domain) for domain in configured)
        self._sites: dict[str, Site] = {}
        self.reload()

    @property
    def open_to_all(self) -> bool:
        """Dev mode: no site configured, every domain accepted."""
        return not self._sites

    def get(self, domain: str) -> Site | None:
        """The site for ``domain``, or None when it is not allowed."""
        site = self._sites.get(domain)
        if site is None and not self._sites:
            return _dev_mode_site(domain)
        return site

    def all(self) -> list[Site]:
        return sorted(self._sites.values(), key=lambda site: site.domain)

    def reload(self) -> None:
        stored = {site.domain: site for site in list_sites(self._store)}
        for domain in self._configured:
            stored.setdefault(domain, make_site(domain))
        self._sites = stored


def list_sites(store: Store, domain: str | None = None) -> list[Site]:
    """Stored sites (only ``domain``'s when given)."""
    rows = store.rows(
        "SELECT domain, timezone, exclude_ips, exclude_paths FROM sites FINAL "
        "WHERE deleted = 0 AND ({domain:Nullable(String)} IS NULL "
        "OR domain = {domain:Nullable(String)}) ORDER BY domain",
        {"domain": domain},
    )
    return [make_site(domain, timezone, tuple(ips), tuple(paths))
            for domain, timezone, ips, paths in rows]


def _stored_site(store: Store, domain: str) -> Site | None:
    found = list_sites(store, domain)
    return found[0] if found else None


def save_site(store: Store, site: Site, deleted: bool = False) -> None:
    store.command(
        "INSERT INTO sites (domain, timezone, exclude_ips, exclude_paths, deleted, version) "
        "VALUES ({domain:String}, {timezone:String}, {ips:Array(String)}, "
        "{paths:Array(String)}, {deleted:UInt8}, {version:UInt64})",
        {"domain": site.domain, "timezone": site.timezone,
         "ips": [str(network) for network in site.exclude_ips],
         "paths": list(site.exclude_paths), "deleted": int(deleted),
         "version": time.time_ns()},
    )


def add_site(store: Store, domain: str, timezone: str = "UTC") -> Site:
    domain = domain_of(domain)
    _check_timezone(store, timezone)
    existing = _stored_site(store, domain)
    site = dataclasses.replace(existing, timezone=timezone) if existing \
        else make_site(domain, timezone)
    save_site(store, site)
    return site


def remove_site(store: Store, domain: str) -> bool:
    domain = domain_of(domain)
    existing = _stored_site(store, domain)
    if existing is None:
        return False
    save_site(store, existing, deleted=True)
    return True


def set_exclusions(store: Store, domain: str, ips: tuple[str, ...],
                   paths: tuple[str, ...]) -> Site:
    """Replace the site's excluded IP ranges and path globs."""
    existing = _existing_site(store, domain)
    for cidr in ips:
        _network(cidr, "ip")
    site = make_site(existing.domain, existing.timezone, ips, paths)
    save_site(store, site)
    return site


def change_exclusions(store: Store, domain: str, *, add_ips: tuple[str, ...] = (),
                      remove_ips: tuple[str, ...] = (), add_paths: tuple[str, ...] = (),
                      remove_paths: tuple[str, ...] = (), clear: bool = False) -> Site:
    """Add and remove excluded IP ranges and path globs; ``clear`` first drops them all.

    Removing a range or glob the site does not exclude is an error (a typo would
    otherwise pass silently); adding one it already excludes changes nothing.
    """
    existing = _existing_site(store, domain)
    networks = [] if clear else list(existing.exclude_ips)
    paths = [] if clear else list(existing.exclude_paths)
    for cidr in remove_ips:
        network = _network(cidr, "remove_ip")
        if network not in networks:
            raise InvalidField(f"{existing.domain} does not exclude {network}", "remove_ip")
        networks.remove(network)
    for glob in remove_paths:
        if glob not in paths:
            raise InvalidField(f"{existing.domain} does not exclude {glob!r}", "remove_path")
        paths.remove(glob)
    networks += [network for network in dict.fromkeys(_network(cidr, "ip") for cidr in add_ips)
                 if network not in networks]
    paths += [glob for glob in dict.fromkeys(add_paths) if glob not in paths]
    site = make_site(existing.domain, existing.timezone,
                     tuple(str(network) for network in networks), tuple(paths))
    if site != existing:
        save_site(store, site)
    return site


def allowed_domains(store: Store, configured: tuple[str, ...]) -> set[str]:
    """The allow-list: stored sites and ``COLLECTOR_SITES`` (empty: dev mode)."""
    return {site.domain for site in list_sites(store)} | set(configured)


def check_allowed(store: Store, domain: str, configured: tuple[str, ...],
                  field_name: str = "site") -> str:
    """``domain`` normalised; InvalidField when an allow-list exists without it (in dev
    mode, with no site at all, every domain is allowed)."""
    domain = domain_of(domain, field_name)
    allowed = allowed_domains(store, configured)
    if allowed and domain not in allowed:
        raise InvalidField(f"unknown site {domain!r}; add it first with "
                           f"`collector sites add {domain}`", field_name)
    return domain


def _existing_site(store: Store, domain: str) -> Site:
    domain = domain_of(domain)
    existing = _stored_site(store, domain)
    if existing is None:
        raise InvalidField(f"unknown site {domain!r}; add it first", "domain")
    return existing


def _network(cidr: str, field_name: str) -> IPNetwork:
    try:
        return ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        raise InvalidField(f"{cidr!r} is not a CIDR range", field_name) from None


def _check_timezone(store: Store, timezone: str) -> None:
    """InvalidField unless ClickHouse, which does the reports' date arithmetic, knows it.

    Asked as a lookup rather than by trying the zone, so that a store error (ClickHouse
    down) propagates as itself instead of passing for an unknown timezone.
    """
    known = store.rows("SELECT count() FROM system.time_zones WHERE time_zone = {tz:String}",
                       {"tz": timezone})
    if not known[0][0]:
        raise InvalidField(f"unknown timezone {timezone!r}", "timezone")

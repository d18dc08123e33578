"""From a parsed request to stored ``Event`` values: privacy, then enrichment.

The order is the data flow: consent and prefetch first (cheapest, and nothing
else should even be looked at), then the user agent (bots), the page URL, the
sites, and only then the IP address — used for exclusions, the rate limits, the geo lookup and
the visitor hash, and gone when this function returns.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from collector.acquisition import URL_FIELDS, ArrivalReader
from collector.enrich import (
    GeoLookup,
    SpamList,
    classify_user_agent,
    is_prefetch,
    primary_language,
    screen_class,
)
from collector.event import Event
from collector.ingest import IncomingEvent, props_with_path
from collector.privacy import (
    ClientAddressResolver,
    SaltKeeper,
    opted_out,
    visitor_hash,
)
from collector.privacy.salts import DAY_MS
from collector.reloading import ReloadingFile
from collector.settings import Settings
from collector.sites import Site, SiteRegistry

# ``process`` builds events by position (a 33-keyword call costs 1.5 µs more per event):
# the site and visitor fields, then the arrival's (URL_FIELDS), then the client's, in
# ``Event`` order, checked here so that no two fields can be swapped unnoticed.
_CLIENT_FIELDS = ("browser", "browser_version", "os", "os_version", "device", "screen",
                  "language", "country", "region", "city", "isp", "prop_keys", "prop_values",
                  "interactive", "scroll_depth", "engaged_ms", "revenue_amount",
                  "revenue_currency")
if Event._fields != ("site", "timestamp_ms", "name", "visitor", "visit", *URL_FIELDS,
                     *_CLIENT_FIELDS):
    raise ImportError("collector.pipeline: Event no longer has the layout process builds")

# A visit ends after 30 minutes without events, so only that long after midnight can
# an event continue a visit that began under yesterday's salt.
MIDNIGHT_GRACE_MS = 30 * 60 * 1000


class Dropped(NamedTuple):
    """An event deliberately not recorded, and why (sent back in ``X-Collector-Dropped``)."""

    reason: str


@dataclass
class DropCounts:
    by_reason: dict[str, int] = field(default_factory=dict)

    def count(self, reason: str) -> Dropped:
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        return Dropped(reason)


class Pipeline:
    def __init__(self, settings: Settings, sites: SiteRegistry, salts: SaltKeeper,
                 geo: GeoLookup, spam_list: ReloadingFile[SpamList],
                 clock: Callable[[], float] = time.time,
                 continues_visit: Callable[[str, int, int], bool] = lambda *_: False,
                 admit: Callable[[str, Sequence[Site]], None] = lambda *_: None) -> None:
        self._settings = settings
        self._sites = sites
        self._salts = salts
        self._geo = geo
        self._spam_list = spam_list
        self._clock = clock
        self._continues_visit = continues_visit
        self._admit = admit  # the rate limits (collector.ratelimit): raise TooManyRequests
        self._addresses = ClientAddressResolver(settings.trusted_proxies)
        self._arrivals = ArrivalReader.from_settings(settings)
        self.drops = DropCounts()

    @property
    def untrusted_forwarding(self) -> int:
        """Requests so far whose forwarding headers were ignored: their peer is not trusted."""
        return self._addresses.untrusted_forwarding

    @property
    def spam(self) -> SpamList:
        """The referrer-spam list as last loaded; reloaded in the background, never here."""
        return self._spam_list.current

    def process(self, incoming: IncomingEvent, peer: str | None,
                headers: Mapping[str, str]) -> list[Event] | Dropped:
        """Events to store (one per site named), or why nothing is stored."""
        if self._settings.honor_dnt and opted_out(headers):
            return self.drops.count("opt-out")
        if is_prefetch(headers):
            return self.drops.count("prefetch")
        user_agent = headers.get("user-agent", "")
        agent = classify_user_agent(user_agent)
        if agent.bot or not user_agent:  # browsers always send one; scripts often don't
            return self.drops.count("bot")
        arrival = self._arrivals.read(incoming.url, incoming.referrer, incoming.hash_mode)
        sites = [site for site in map(self._sites.get, incoming.domains) if site is not None]
        if not sites:
            return self.drops.count("unknown-site")
        referrer_host = arrival.referrer_host
        if referrer_host and self.spam.is_spam(referrer_host):
            return self.drops.count("spam")
        # The IP is used from here to the end of this function, and never leaves it.
        ip = self._addresses.resolve(peer, headers)
        sites = [site for site in sites if not site.excludes(ip, arrival.page.pathname)]
        if not sites:
            return self.drops.count("excluded")
        self._admit(ip, sites)
        location = self._geo.lookup(ip)
        now_ms = int(self._clock() * 1000)
        salt = self._salts.salt_for(now_ms)
        language = primary_language(headers.get("accept-language"))
        screen = screen_class(incoming.screen_width)
        from_urls = arrival.event_values()
        prop_keys, prop_values = props_with_path(incoming, arrival.page.pathname)
        from_client = (  # in _CLIENT_FIELDS order, checked above
            agent.browser, agent.browser_version, agent.os, agent.os_version, agent.device,
            screen, language, location.country, location.region, location.city, location.isp,
            prop_keys, prop_values, int(incoming.interactive), incoming.scroll_depth,
            incoming.engaged_ms, incoming.revenue_amount, incoming.revenue_currency)
        return [
            Event._make((site.domain, now_ms, incoming.name,
                         self._visitor(salt, site.domain, ip, user_agent, now_ms), 0,
                         *from_urls, *from_client))
            for site in sites
        ]

    def _visitor(self, salt: bytes, site: str, ip: str, user_agent: str, now_ms: int) -> int:
        """Today's hash — or yesterday's, for a visit still going on across midnight."""
        if now_ms % DAY_MS < MIDNIGHT_GRACE_MS:
            previous = self._salts.previous_salt(now_ms)
            if previous is not None:
                earlier = visitor_hash(previous, site, ip, user_agent)
                if self._continues_visit(site, earlier, now_ms):
                    return earlier
        return visitor_hash(salt, site, ip, user_agent)


"""Enrichment: what a request carries → coarse, non-personal dimensions.

Pure functions over readers and tables loaded once; nothing here does I/O per request
(changed files are reloaded by a background duty, ``collector.reloading``). Nothing returned
identifies a visitor: browser and OS with their major.minor versions, device class,
country/region, ISP organisation, referrer source, screen class and primary language.
"""

from __future__ import annotations

from collector.enrich.bots import bot_reason, is_prefetch
from collector.enrich.geo import GeoLookup, Location
from collector.enrich.geo_update import DBIP_ATTRIBUTION, update_geoip_database
from collector.enrich.language import primary_language
from collector.enrich.referrers import ReferrerClass, classify_referrer
from collector.enrich.screen import screen_class
from collector.enrich.spam import MATOMO_SPAM_LIST_URL, SpamList, update_spam_list
from collector.enrich.useragent import UserAgentInfo, classify_user_agent

__all__ = [
    "DBIP_ATTRIBUTION",
    "MATOMO_SPAM_LIST_URL",
    "GeoLookup",
    "Location",
    "ReferrerClass",
    "SpamList",
    "UserAgentInfo",
    "bot_reason",
    "classify_referrer",
    "classify_user_agent",
    "is_prefetch",
    "primary_language",
    "screen_class",
    "update_geoip_database",
    "update_spam_list",
]

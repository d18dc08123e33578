"""A visit's acquisition channel, from its referrer class and campaign tags.

The names follow the channel groups of Plausible (and GA4) so that reports read
the same: Direct, Organic Search, Paid Search, Organic Social, Paid Social,
Email, Affiliates, Display, Referral.
"""

from __future__ import annotations

_PAID_MEDIUMS = ("cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "cpv", "cpa")
_SOCIAL_MEDIUMS = ("social", "social-network", "social-media", "sm", "social network",
                   "social media")
_EMAIL_MEDIUMS = ("email", "e-mail", "e_mail", "e mail", "newsletter")


def channel_of(referrer_source: str, referrer_medium: str, utm_source: str,
               utm_medium: str, utm_campaign: str) -> str:
    """The channel group of a visit (its first event's referrer and utm tags)."""
    medium = utm_medium.lower()
    referrer_class = referrer_medium.lower()
    if medium in _EMAIL_MEDIUMS or referrer_class == "email":
        return "Email"
    if medium == "affiliate":
        return "Affiliates"
    if medium in ("display", "banner", "expandable", "interstitial", "cpm"):
        return "Display"
    paid = medium in _PAID_MEDIUMS or medium.startswith("paid") or "cp" == medium[:2]
    if referrer_class == "search" or utm_source.lower() in ("google", "bing", "duckduckgo"):
        return "Paid Search" if paid else "Organic Search"
    if referrer_class == "social" or medium in _SOCIAL_MEDIUMS:
        return "Paid Social" if paid else "Organic Social"
    if paid:
        return "Paid Other"
    if referrer_source or referrer_class or utm_source or utm_campaign:
        return "Referral"
    return "Direct"

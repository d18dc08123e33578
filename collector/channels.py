"""A visit's acquisition channel, from its referrer class and campaign tags.

The names follow Plausible's channel groups (GA4's default groups, plus its own
"AI Assistants") so that reports read the same: Direct, Organic Search, Paid
Search, Organic Social, Paid Social, Email, Affiliates, Display, Paid Other,
AI Assistants, Referral. The referrer class is what ingest stores as
``referrer_medium`` (``collector.enrich.referrers``): "direct" when nothing
referred the visit.
"""

from __future__ import annotations

from collector.enrich.referrers import AI_ASSISTANT, EMAIL, REFERRAL, SEARCH, SOCIAL

_PAID_MEDIUMS = ("cpc", "ppc", "paid", "paidsearch", "paid_search", "cpm", "cpv", "cpa")
_SOCIAL_MEDIUMS = ("social", "social-network", "social-media", "sm", "social network",
                   "social media")
_EMAIL_MEDIUMS = ("email", "e-mail", "e_mail", "e mail", "newsletter")
_DISPLAY_MEDIUMS = ("display", "banner", "expandable", "interstitial", "cpm")
_REFERRAL_MEDIUMS = ("referral", "app", "link")
_SEARCH_SOURCES = ("google", "bing", "duckduckgo")


def channel_of(referrer_source: str, referrer_medium: str, utm_source: str,
               utm_medium: str, utm_campaign: str) -> str:
    """The channel group of a visit (its first event's referrer and utm tags)."""
    medium = utm_medium.lower()
    referrer_class = referrer_medium.lower()
    if medium in _EMAIL_MEDIUMS or referrer_class == EMAIL:
        return "Email"
    if medium == "affiliate":
        return "Affiliates"
    if medium in _DISPLAY_MEDIUMS:
        return "Display"
    paid = medium in _PAID_MEDIUMS or medium.startswith("paid") or medium.startswith("cp")
    if referrer_class == SEARCH or utm_source.lower() in _SEARCH_SOURCES:
        return "Paid Search" if paid else "Organic Search"
    if referrer_class == SOCIAL or medium in _SOCIAL_MEDIUMS:
        return "Paid Social" if paid else "Organic Social"
    if paid:
        return "Paid Other"
    if referrer_class == AI_ASSISTANT:
        return "AI Assistants"
    # Not the referrer class itself: "direct" is a class, and means no referrer at all.
    if referrer_source or utm_source or utm_campaign or referrer_class == REFERRAL \
            or medium in _REFERRAL_MEDIUMS:
        return "Referral"
    return "Direct"

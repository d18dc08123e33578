"""collector.channels: a visit's channel from its stored referrer class and campaign tags."""

from __future__ import annotations

import pytest

from collector.channels import channel_of
from collector.enrich.referrers import KNOWN_REFERRERS

# (referrer_source, referrer_medium as ingest stores it, utm_source, utm_medium,
#  utm_campaign) -> channel
CHANNELS = [
    (("", "direct", "", "", ""), "Direct"),
    (("", "", "", "", ""), "Direct"),
    (("Google", "search", "", "", ""), "Organic Search"),
    (("Google", "search", "google", "cpc", "brand"), "Paid Search"),
    (("Bing", "search", "", "PPC", ""), "Paid Search"),
    (("Google", "search", "google", "", ""), "Organic Search"),
    (("Facebook", "social", "", "", ""), "Organic Social"),
    (("Facebook", "social", "facebook", "paid", ""), "Paid Social"),
    (("mastodon-bot", "direct", "mastodon-bot", "social", ""), "Organic Social"),
    (("Gmail", "email", "", "", ""), "Email"),
    (("newsletter", "direct", "newsletter", "Email", "may"), "Email"),
    (("partner", "direct", "partner", "affiliate", ""), "Affiliates"),
    (("ads", "direct", "ads", "banner", ""), "Display"),
    (("ads", "direct", "ads", "cpm", ""), "Display"),
    (("github.com", "referral", "", "cpc", ""), "Paid Other"),
    (("ChatGPT", "ai-assistant", "", "", ""), "AI Assistants"),
    (("ChatGPT", "ai-assistant", "chatgpt.com", "", ""), "AI Assistants"),
    (("Perplexity", "ai-assistant", "", "cpc", ""), "Paid Other"),
    (("github.com", "referral", "", "", ""), "Referral"),
    (("producthunt", "direct", "", "", ""), "Referral"),  # named by a ref tag only
    (("", "direct", "", "", "launch"), "Referral"),
    (("", "direct", "", "referral", ""), "Referral"),
]


@pytest.mark.parametrize(("visit", "channel"), CHANNELS, ids=[c for _, c in CHANNELS])
def test_channel_of(visit: tuple[str, str, str, str, str], channel: str) -> None:
    assert channel_of(*visit) == channel


ORGANIC = {"search": "Organic Search", "social": "Organic Social", "email": "Email",
           "ai-assistant": "AI Assistants"}


def test_every_known_referrer_has_the_channel_of_its_class() -> None:
    wrong = {host: channel_of(source, medium, "", "", "")
             for host, (source, medium) in KNOWN_REFERRERS.items()
             if channel_of(source, medium, "", "", "") != ORGANIC[medium]}
    assert wrong == {}

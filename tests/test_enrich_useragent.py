"""collector.enrich.useragent: real user-agent strings → browser, OS, device class."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.enrich import UserAgentInfo, classify_user_agent

USERAGENTS = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "useragents"

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)

BROWSERS = [
    (CHROME_WINDOWS, ("Chrome", "120", "Windows", "10", "desktop")),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ("Firefox", "121", "Windows", "10", "desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91"
        ),
        ("Edge", "120", "Windows", "10", "desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.2 Safari/605.1.15"
        ),
        ("Safari", "17", "macOS", "10.15", "desktop"),
    ),
    (
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/145.0.0.0 Safari/537.36"
        ),
        ("Chrome", "145", "macOS", "10.15", "desktop"),
    ),
    (
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36"
        ),
        ("Chrome", "120", "Linux", "", "desktop"),
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        ("Firefox", "121", "Ubuntu", "", "desktop"),
    ),
    (
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
        ),
        ("Safari", "17", "iOS", "17.4", "mobile"),
    ),
    (
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) CriOS/122.0.6261.89 Mobile/15E148 Safari/604.1"
        ),
        ("Chrome", "122", "iOS", "17.4", "mobile"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.6099.144 Mobile Safari/537.36"
        ),
        ("Chrome", "120", "Android", "14", "mobile"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
            "SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36"
        ),
        ("Samsung Internet", "23", "Android", "13", "mobile"),
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:123.0) Gecko/123.0 Firefox/123.0",
        ("Firefox", "123", "Android", "14", "mobile"),
    ),
    (
        (
            "Mozilla/5.0 (iPad; CPU OS 17_2 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1"
        ),
        ("Safari", "17", "iOS", "17.2", "tablet"),
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36"
        ),
        ("Chrome", "120", "Android", "13", "tablet"),
    ),
]

BOTS = [
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
    (
        (
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 "
            "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
        ),
        "crawler",
    ),
    ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "crawler"),
    (
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0.0.0 Safari/537.36"
        ),
        "headless",
    ),
    ("curl/8.4.0", "http-client"),
    ("python-requests/2.31.0", "http-client"),
]


@pytest.mark.parametrize(("ua", "expected"), BROWSERS)
def test_browsers_are_classified(ua: str, expected: tuple[str, str, str, str, str]) -> None:
    info = classify_user_agent(ua)
    assert (info.browser, info.browser_version, info.os, info.os_version, info.device) == expected
    assert info.bot == ""


@pytest.mark.parametrize(("ua", "reason"), BOTS)
def test_bots_are_classified_as_bots(ua: str, reason: str) -> None:
    info = classify_user_agent(ua)
    assert info.device == "bot"
    assert info.bot == reason


def test_empty_user_agent_is_other() -> None:
    assert classify_user_agent("") == UserAgentInfo("", "", "", "", "other", "")


def test_unknown_string_has_empty_names() -> None:
    info = classify_user_agent("something nobody has seen")
    assert info.browser == "" and info.os == ""
    assert info.device in {"other", "bot"}


def test_result_is_frozen_and_cached() -> None:
    first = classify_user_agent(CHROME_WINDOWS)
    assert classify_user_agent(CHROME_WINDOWS) is first
    with pytest.raises(AttributeError):
        first.browser = "Other"  # type: ignore[misc]
    assert classify_user_agent.cache_info().maxsize is not None


def test_raw_string_is_not_kept() -> None:
    # A raw user agent is never stored: the result holds only coarse fields.
    info = classify_user_agent(CHROME_WINDOWS)
    assert CHROME_WINDOWS not in repr(info)
    assert not hasattr(info, "__dict__")


def test_weighted_traffic_is_mostly_known_devices() -> None:
    lines = (USERAGENTS / "traffic-weighted-10k.txt").read_text().splitlines()
    devices = [classify_user_agent(ua).device for ua in lines if ua]
    known = sum(device in {"desktop", "mobile", "tablet"} for device in devices)
    assert known / len(devices) > 0.99


def test_warm_up_parses_the_crawler_examples() -> None:
    from collector.enrich.useragent import warm_up

    assert warm_up() > 1000


def test_public_api() -> None:
    import collector.enrich as enrich

    for name in [
        "UserAgentInfo",
        "classify_user_agent",
        "bot_reason",
        "is_prefetch",
        "Location",
        "GeoLookup",
        "update_geoip_database",
        "classify_referrer",
        "ReferrerClass",
        "SpamList",
        "update_spam_list",
        "screen_class",
        "primary_language",
    ]:
        assert name in enrich.__all__ and hasattr(enrich, name)

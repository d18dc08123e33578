"""collector.enrich.useragent: real user-agent strings → browser, OS, device class.

The tables are inline (tests/user_agents.py), so a clone without ../shared covers the
classification; the weighted-traffic test reads the optional corpus
../shared/testdata/useragents and skips without it.
"""

from __future__ import annotations

import pytest

from collector.enrich import UserAgentInfo, classify_user_agent
from tests.conftest import shared_testdata_lines
from tests.user_agents import BOTS, BROWSERS, CHROME_WINDOWS


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


def test_empty_user_agent_has_no_device() -> None:
    # Reported as "(not set)", as Plausible reports a device it cannot tell.
    assert classify_user_agent("") == UserAgentInfo("", "", "", "", "", "")


def test_unknown_string_has_empty_names() -> None:
    info = classify_user_agent("something nobody has seen")
    assert info.browser == "" and info.os == ""
    assert info.device in {"", "bot"}


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
    lines = shared_testdata_lines("useragents", "traffic-weighted-10k.txt")
    devices = [classify_user_agent(ua).device for ua in lines]
    known = sum(device in {"Desktop", "Mobile", "Tablet"} for device in devices)
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

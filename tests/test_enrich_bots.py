"""collector.enrich.bots: crawler, headless and HTTP-client detection; prefetch headers.

The reasons are checked on inline strings; the rates on the optional corpus
../shared/testdata/useragents, whose tests skip without it.
"""

from __future__ import annotations

import pytest

from collector.enrich import bot_reason, classify_user_agent, is_prefetch
from tests.conftest import shared_testdata_lines
from tests.user_agents import BOTS, BROWSERS


def _lines(name: str) -> list[str]:
    return shared_testdata_lines("useragents", name)


def test_flags_nearly_all_known_crawlers() -> None:
    bots = _lines("bots.txt")
    flagged = sum(1 for ua in bots if bot_reason(ua))
    assert flagged / len(bots) >= 0.99


def test_flags_almost_no_real_browsers() -> None:
    traffic = _lines("traffic-weighted-10k.txt")
    flagged = sum(1 for ua in traffic if classify_user_agent(ua).bot)
    assert flagged / len(traffic) <= 0.005


REASONS: list[tuple[str, str]] = [
    ("curl/8.4.0", "http-client"),
    ("Wget/1.21.4", "http-client"),
    ("python-requests/2.31.0", "http-client"),
    ("python-httpx/0.27.0", "http-client"),
    ("Python/3.11 aiohttp/3.9.1", "http-client"),
    ("Go-http-client/1.1", "http-client"),
    ("Java/17.0.2", "http-client"),
    ("okhttp/4.12.0", "http-client"),
    ("axios/1.6.2", "http-client"),
    ("node-fetch/1.0 (+https://github.com/bitinn/node-fetch)", "http-client"),
    ("libwww-perl/6.72", "http-client"),
    ("Scrapy/2.11.0 (+https://scrapy.org)", "http-client"),
    (
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/120.0.0.0 Safari/537.36"
        ),
        "headless",
    ),
    (
        (
            "Mozilla/5.0 (Unknown; Linux x86_64) AppleWebKit/538.1 (KHTML, like Gecko) "
            "PhantomJS/2.1.1 Safari/538.1"
        ),
        "headless",
    ),
    (
        (
            "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/119.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"
        ),
        "headless",
    ),
    (
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "scraper/1.0 Chrome/120.0.6099.56 Electron/28.0.0 Safari/537.36"
        ),
        "headless",
    ),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "crawler"),
    ("Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "crawler"),
]
# Every inline string: bots of each kind and ordinary browsers.
INLINE_SAMPLES = [ua for ua, _ in REASONS + BOTS] + [ua for ua, _ in BROWSERS]


@pytest.mark.parametrize(("ua", "reason"), REASONS)
def test_reasons(ua: str, reason: str) -> None:
    assert bot_reason(ua) == reason


def test_browser_has_no_reason() -> None:
    ua = (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36"
    )
    assert bot_reason(ua) == ""


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"sec-purpose": "prefetch"}, True),
        ({"sec-purpose": "prefetch;prerender"}, True),
        ({"purpose": "prefetch"}, True),
        ({"x-moz": "prefetch"}, True),
        ({"sec-purpose": "Prefetch"}, True),
        ({}, False),
        ({"sec-purpose": ""}, False),
        ({"user-agent": "prefetch"}, False),
    ],
)
def test_prefetch(headers: dict[str, str], expected: bool) -> None:
    assert is_prefetch(headers) is expected


def _assert_python_fallback_agrees(samples: list[str]) -> None:
    # Without ua_parser_rs the same rules run in Python's re, with the same reasons.
    from collector.enrich.bots import _compile_python, _rules, pattern_bot_reason

    fallback = _compile_python(_rules())
    assert [fallback(ua) for ua in samples] == [pattern_bot_reason(ua) for ua in samples]


def test_python_fallback_matches_like_the_rust_set() -> None:
    _assert_python_fallback_agrees(INLINE_SAMPLES + ["HeadlessChrome/120",
                                                     "Mozilla/5.0 Electron/28.0.0"])


def test_python_fallback_matches_on_the_corpus() -> None:
    _assert_python_fallback_agrees(_lines("bots.txt")[:300]
                                   + _lines("traffic-weighted-10k.txt")[:300])


def _assert_bot_reason_agrees_with_classification(samples: list[str]) -> None:
    assert [bot_reason(ua) for ua in samples] == [classify_user_agent(ua).bot for ua in samples]


def test_bot_reason_agrees_with_classification() -> None:
    _assert_bot_reason_agrees_with_classification(INLINE_SAMPLES)


def test_bot_reason_agrees_with_classification_on_the_corpus() -> None:
    _assert_bot_reason_agrees_with_classification(_lines("distinct-10k.txt")[:1000])

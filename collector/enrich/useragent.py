"""User agent → browser, OS, device class and bot reason.

Only coarse, common values leave this module: browser family and *major* version, OS
family and version (major.minor for Apple systems, major elsewhere), and a device class.
The raw string itself is never returned, so it cannot reach an Event.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import _CacheInfo, lru_cache

from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from collector.enrich._parser import ParsedUserAgent, parse_user_agent
from collector.enrich.bots import CRAWLER, pattern_bot_reason

# Real traffic repeats a few hundred strings; 20k entries cover the long tail too.
CACHE_SIZE = 20_000
# Only the first 512 characters of a header are looked at: the longest of the 22,000 real
# user agents in the test corpora has 361, so no browser loses a token, while a padded
# header can neither cost more to parse nor weigh more in the cache. With this cap the
# cache holds at most CACHE_SIZE entries of about 0.9 KB: 18 MiB (tests/test_memory.py).
MAX_USER_AGENT_LENGTH = 512

DESKTOP = "desktop"
MOBILE = "mobile"
TABLET = "tablet"
BOT = "bot"
OTHER = "other"

# Merge ua-parser's per-platform names into the product people know; the device
# column already says whether it ran on a phone.
BROWSER_NAMES: dict[str, str] = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome WebView",
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari (in-app)",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
    "Opera Touch": "Opera",
    "DuckDuckGo Mobile": "DuckDuckGo",
    "Other": "",
}

OS_NAMES: dict[str, str] = {
    "Mac OS X": "macOS",
    "Other": "",
}

# Apple's minor releases are what people talk about (iOS 17.4, macOS 10.15); elsewhere
# the major version is the meaningful one and keeps the crowd per value larger.
OS_WITH_MINOR_VERSION = frozenset({"iOS", "iPadOS", "macOS"})


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str
    bot: str


EMPTY = UserAgentInfo("", "", "", "", OTHER, "")


def _version(parts: tuple[object, ...], with_minor: bool) -> str:
    if not parts:
        return ""
    if with_minor and len(parts) > 1:
        return f"{parts[0]}.{parts[1]}"
    return str(parts[0])


def _device_class(parsed: ParsedUserAgent) -> str:
    # Tablets first: user-agents counts some tablets as mobile too.
    if parsed.is_tablet:
        return TABLET
    if parsed.is_mobile:
        return MOBILE
    if parsed.is_pc:
        return DESKTOP
    return OTHER


def _classify(ua: str) -> UserAgentInfo:
    if not ua:
        return EMPTY
    reason = pattern_bot_reason(ua)
    if reason:
        # Bot events are not counted, so the (costly) parse is skipped for known bots.
        return UserAgentInfo("", "", "", "", BOT, reason)
    parsed = parse_user_agent(ua)
    if parsed.is_bot:
        return UserAgentInfo("", "", "", "", BOT, CRAWLER)
    family = parsed.browser.family
    browser = BROWSER_NAMES.get(family, family)
    system = OS_NAMES.get(parsed.os.family, parsed.os.family)
    return UserAgentInfo(
        browser=browser,
        browser_version=_version(parsed.browser.version, False) if browser else "",
        os=system,
        os_version=_version(parsed.os.version, system in OS_WITH_MINOR_VERSION) if system else "",
        device=_device_class(parsed),
        bot="",
    )


class _CachedClassifier:
    """``classify_user_agent``: the cache is keyed by the considered prefix of the header."""

    def __init__(self) -> None:
        # Raw user agents are never stored: only the coarse fields leave (the prefix is an
        # in-memory cache key, nothing more).
        self._cached = lru_cache(maxsize=CACHE_SIZE)(_classify)

    def __call__(self, ua: str) -> UserAgentInfo:
        """Classify one User-Agent header value by its first MAX_USER_AGENT_LENGTH
        characters; cached."""
        return self._cached(ua[:MAX_USER_AGENT_LENGTH])

    def cache_info(self) -> _CacheInfo:
        return self._cached.cache_info()

    def cache_clear(self) -> None:
        self._cached.cache_clear()


classify_user_agent = _CachedClassifier()


def warm_up() -> int:
    """Run the parser over the crawler examples shipped with crawler-user-agents.

    The compiled regex engines build their automata lazily, so the first few thousand
    new strings after startup cost 2-3x more. Calling this once at startup (~0.2 s) moves
    that cost out of the first requests. Returns the number of strings parsed.
    """
    examples = [
        example for entry in CRAWLER_USER_AGENTS_DATA for example in entry.get("instances", [])
    ]
    for example in examples:
        parse_user_agent(example)
    return len(examples)

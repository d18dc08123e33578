"""User agent → browser, OS, device class and bot reason.

Only coarse, common values leave this module: browser family and version, OS family and
version (both major.minor), and a device class, named as Plausible names them ("Mac",
"GNU/Linux", "Microsoft Edge", "Desktop", "120.0"), so that a site moving from Plausible
reads the same values and its saved filters keep matching. The raw string itself is never
returned, so it cannot reach an Event.
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

DESKTOP = "Desktop"
MOBILE = "Mobile"
TABLET = "Tablet"
BOT = "bot"
OTHER = ""  # reported as "(not set)", as Plausible shows a device it cannot tell

MOBILE_APP = "Mobile App"  # Plausible's name for an app's embedded browser

# ua-parser's per-platform names merged into the product, named as Plausible's parser
# (Matomo's device detector) names it; the device column already says it ran on a phone.
BROWSER_NAMES: dict[str, str] = {
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": MOBILE_APP,
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": MOBILE_APP,
    "Facebook": MOBILE_APP,
    "Instagram": MOBILE_APP,
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge": "Microsoft Edge",
    "Edge Mobile": "Microsoft Edge",
    "IE": "Internet Explorer",
    "Opera Mobile": "Opera",
    "Opera Mini": "Opera",
    "Samsung Internet": "Samsung Browser",
    "DuckDuckGo Mobile": "DuckDuckGo Privacy Browser",
    "MiuiBrowser": "MIUI Browser",
    "Silk": "Mobile Silk",
    "Other": "",
}

OS_NAMES: dict[str, str] = {
    "Mac OS X": "Mac",
    "Linux": "GNU/Linux",
    "Other": "",
}


@dataclass(frozen=True, slots=True)
class UserAgentInfo:
    browser: str
    browser_version: str
    os: str
    os_version: str
    device: str
    bot: str


EMPTY = UserAgentInfo("", "", "", "", OTHER, "")


def _version(parts: tuple[object, ...]) -> str:
    """Major and minor, as Plausible keeps them ("120.0", "10.15", "14")."""
    return ".".join(str(part) for part in parts[:2])


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
    # An app's browser has the app's version, not a browser's: Plausible keeps none.
    versioned = browser not in ("", MOBILE_APP)
    return UserAgentInfo(
        browser=browser,
        browser_version=_version(parsed.browser.version) if versioned else "",
        os=system,
        os_version=_version(parsed.os.version) if system else "",
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

"""Bot and prefetch detection.

Three kinds of rules, checked in one pass by one compiled matcher, first match wins:

1. headless browsers and automation (``HeadlessChrome``, PhantomJS, Lighthouse, ...);
2. HTTP client libraries and command-line tools (curl, python-requests, Go-http-client, ...);
3. the maintained ``crawler-user-agents`` patterns (about 1,500 crawlers).

The matcher is ua-parser's compiled Rust regex set (``ua_parser_rs``, installed by the
``ua-parser[regex]`` extra): 1,500 alternations in Python's ``re`` cost ~450 µs per
string, the Rust set ~3 µs. Python's ``re`` is the fallback when the extension is absent.
user-agents' own ``is_bot`` flag (ua-parser's "Spider" device) is the last resort, as it
needs a full parse; :func:`collector.enrich.useragent.classify_user_agent` parses anyway and
reuses that parse.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from collector.enrich._parser import parse_user_agent

HEADLESS = "headless"
HTTP_CLIENT = "http-client"
CRAWLER = "crawler"

# Automation and headless engines: real people never browse with these.
# Flags are scoped, (?i:...), so the same patterns work in Rust and in Python's re.
HEADLESS_PATTERNS: tuple[str, ...] = (
    r"HeadlessChrome|(?i:headless)",
    r"PhantomJS|SlimerJS|HtmlUnit|jsdom/|Splash|Nightmare",
    r"Electron/",
    r"Lighthouse",
    r"(?i:puppeteer|playwright|selenium|webdriver|cypress)",
)

# Libraries and tools that fetch pages programmatically. Tokens that could appear inside
# a real browser string are anchored at the start, where a client names itself.
HTTP_CLIENT_PATTERNS: tuple[str, ...] = (
    r"^(?i:curl|libcurl|wget|httpie|aria2|lwp-|fetch|http_request)",
    r"(?i:python-requests|python-urllib|python-httpx|aiohttp|httpx/|urllib3)|^(?i:python)",
    r"(?i:go-http-client|fasthttp|go-resty)|^Go[ /]",
    r"^Java/|(?i:apache-httpclient|apache-httpasyncclient|jakarta commons|okhttp)",
    r"(?i:java-http-client|axios/|node-fetch|undici|superagent|needle/)|^(?i:node|got )",
    r"(?i:libwww-perl|mechanize|scrapy|faraday|rest-client|httparty|typhoeus)|^(?i:perl|ruby)",
    r"(?i:guzzlehttp|zend_http|winhttp|powershell|reqwest|hyper/)|^(?i:php|dart|rust)",
    r"(?i:postmanruntime|insomnia)",
)


def _crawler_patterns() -> list[str]:
    return [entry["pattern"] for entry in CRAWLER_USER_AGENTS_DATA]


def _rules() -> list[tuple[str, str]]:
    rules = [(pattern, HEADLESS) for pattern in HEADLESS_PATTERNS]
    rules += [(pattern, HTTP_CLIENT) for pattern in HTTP_CLIENT_PATTERNS]
    rules += [(pattern, CRAWLER) for pattern in _crawler_patterns()]
    return rules


def _compile_rust(rules: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    import ua_parser_rs

    # The extractor reports the "family" of the first matching rule: here, the reason.
    extractor = ua_parser_rs.UserAgentExtractor(
        (pattern, reason, None, None, None, None) for pattern, reason in rules
    )

    def match(ua: str) -> str:
        found = extractor.extract(ua)
        return str(found.family) if found is not None else ""

    return match


def _compile_python(rules: Iterable[tuple[str, str]]) -> Callable[[str], str]:
    by_reason: dict[str, list[str]] = {}
    for pattern, reason in rules:
        by_reason.setdefault(reason, []).append(f"(?:{pattern})")
    compiled = [(re.compile("|".join(patterns)), reason) for reason, patterns in by_reason.items()]

    def match(ua: str) -> str:
        for regex, reason in compiled:
            if regex.search(ua):
                return reason
        return ""

    return match


def _compile() -> Callable[[str], str]:
    try:
        return _compile_rust(_rules())
    except ImportError:
        return _compile_python(_rules())


_MATCH = _compile()


def pattern_bot_reason(ua: str) -> str:
    """The reason a rule flags ``ua`` as automated, "" when none does (no parsing)."""
    return _MATCH(ua)


def bot_reason(ua: str) -> str:
    """Why ``ua`` is a bot ("headless", "http-client", "crawler"), or "" for a browser."""
    reason = _MATCH(ua)
    if reason:
        return reason
    return CRAWLER if parse_user_agent(ua).is_bot else ""


_PREFETCH_HEADERS = ("sec-purpose", "purpose", "x-moz", "x-purpose")


def is_prefetch(headers: Mapping[str, str]) -> bool:
    """True for speculative loads (prefetch/prerender) that are not a page view yet."""
    for name in _PREFETCH_HEADERS:
        value = headers.get(name)
        if value and "prefetch" in value.lower():
            return True
    return False

"""What is kept of a page URL and a referrer: host and path, scrubbed; campaign tags only.

Promise: "collect only the personal information we need" — query strings are
dropped except allow-listed campaign parameters, fragments unless the site uses
hash routing, and e-mail addresses, long numbers and tokens in paths are
replaced by placeholders before anything is stored.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

from collector.errors import InvalidField

EMAIL = re.compile(r"[^/@\s]+@[^/@\s]+\.[^/@\s]+")
LONG_NUMBER = re.compile(r"\d{6,}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TOKEN_CHARACTERS = re.compile(r"^[A-Za-z0-9_\-+=.~%]{16,}$")
HEX = re.compile(r"^[0-9a-fA-F]{16,}$")
# Paths made only of these are left as they are, without running the scrubbers.
_PLAIN_PATH = re.compile(r"^[a-z/._-]*$")
UTM_FIELDS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
MAX_TAG_LENGTH = 256
# The hostname of a page address without a host (file:, about:, a bare path), as Plausible
# stores it; any other scheme (app://, chrome-extension://) keeps its host.
NO_HOST = "(none)"


class CleanPage(NamedTuple):
    hostname: str
    pathname: str
    tags: dict[str, str]  # allow-listed query parameters, scrubbed


class PageUrlCleaner:
    def __init__(self, query_allowlist: tuple[str, ...], scrub: bool, max_length: int) -> None:
        self._allowlist = query_allowlist
        self._scrub = scrub
        self._max_length = max_length
        # Popular pages repeat; the cache lives in memory only and holds no address.
        self.clean = lru_cache(maxsize=16384)(self._clean)  # type: ignore[method-assign]

    def clean(self, url: str, hash_mode: bool = False) -> CleanPage:
        """Host without ``www.`` (or ``(none)``) and scrubbed path; raises InvalidField for
        an unparsable URL or a ``data:`` one."""
        return self._clean(url, hash_mode)

    def _clean(self, url: str, hash_mode: bool = False) -> CleanPage:
        try:
            parts = urlsplit(url)
        except ValueError:
            raise InvalidField("not a valid URL", "url") from None
        if parts.scheme == "data":  # a whole document, not an address (Plausible refuses it)
            raise InvalidField("the data: scheme is not allowed", "url")
        path = parts.path.rstrip() or "/"
        if parts.scheme == "file":
            # Promise: no personal data in paths. A local path names the computer's user
            # (/Users/jane/...): only the file name is kept.
            path = "/" + path.rsplit("/", 1)[-1]
        if hash_mode and parts.fragment:
            path = f"{path}#{parts.fragment}"
        tags = self._allowed_tags(parts.query) if parts.query else {}
        host = normalize_host(parts.hostname) if parts.hostname else NO_HOST
        return CleanPage(host, self.clean_path(path), tags)

    def clean_path(self, path: str) -> str:
        if "%" in path:
            path = unquote(path)
        if self._scrub and not _PLAIN_PATH.match(path):
            path = scrub_path(path)
        return path[: self._max_length]

    def _allowed_tags(self, query: str) -> dict[str, str]:
        tags = {}
        for key, value in parse_qsl(query, keep_blank_values=False):
            key = key.lower()
            if value and self._allowed(key):
                tags[key] = scrub_text(value)[:MAX_TAG_LENGTH]
        return tags

    def _allowed(self, key: str) -> bool:
        return any(fnmatchcase(key, pattern) for pattern in self._allowlist)


@lru_cache(maxsize=16384)
def clean_referrer(referrer: str | None, site_host: str, max_length: int = 512) -> str:
    """``host/path`` of the referrer, or "" when absent, unparsable or the site itself."""
    if not referrer:
        return ""
    try:
        parts = urlsplit(referrer)
    except ValueError:
        return ""
    if not parts.hostname:
        return ""
    host = normalize_host(parts.hostname)
    if host == site_host or host.endswith("." + site_host):
        return ""  # a self-referral is navigation inside the site, not a source
    path = parts.path if parts.scheme in ("http", "https") else ""
    if path in ("", "/"):
        return host[:max_length]
    return (host + scrub_path(unquote(path)))[:max_length]


@lru_cache(maxsize=4096)
def normalize_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return host[4:] if host.startswith("www.") else host


def scrub_path(path: str) -> str:
    """Replace personal-looking path segments with placeholders."""
    return "/".join(_scrub_segment(segment) for segment in path.split("/"))


def scrub_text(value: str) -> str:
    """Scrub free text such as a campaign tag: e-mail addresses and long numbers."""
    return LONG_NUMBER.sub(":id", EMAIL.sub(":email", value))


def _scrub_segment(segment: str) -> str:
    if not segment:
        return segment
    if "@" in segment and EMAIL.search(segment):
        return EMAIL.sub(":email", segment)
    if UUID.fullmatch(segment) or HEX.match(segment):
        return ":id" if UUID.fullmatch(segment) else ":token"
    if _looks_like_token(segment):
        return ":token"
    return LONG_NUMBER.sub(":id", segment)


def _looks_like_token(segment: str) -> bool:
    """Long runs of mixed letters and digits without word separators: keys, session ids."""
    if not TOKEN_CHARACTERS.match(segment) or segment.count("-") >= 2 or "." in segment[-6:]:
        return False
    digits = sum(character.isdigit() for character in segment)
    letters = sum(character.isalpha() for character in segment)
    return digits >= 2 and letters >= 2

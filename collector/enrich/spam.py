"""Referrer-spam blocklist: Matomo's community list, kept as a local file.

Events whose referrer host (or one of its parent domains) is listed are dropped before
they are counted. ``collector lists update`` refreshes the file; the server reads it
once at startup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from collector.enrich.download import DownloadProgress, fetch, install
from collector.errors import DownloadError

MATOMO_SPAM_LIST_URL = (
    "https://raw.githubusercontent.com/matomo-org/referrer-spam-list/master/spammers.txt"
)
# The real list holds thousands of hosts; far fewer means a truncated or wrong download.
MINIMUM_HOSTS = 100
# A bad line or two should not block an update; a page of HTML must.
MAXIMUM_BAD_LINE_SHARE = 0.01
_HOST = re.compile(r"(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,62}[a-z0-9])?\.)+[a-z0-9-]{2,63}")


def _normalized(host: str) -> str:
    return host.strip().lower().rstrip(".")


class SpamList:
    """A set of spam hosts matched by exact host or parent domain, never by substring."""

    def __init__(self, hosts: Iterable[str]) -> None:
        self._hosts = frozenset(h for h in map(_normalized, hosts) if h and not h.startswith("#"))

    @classmethod
    def from_file(cls, path: Path | None) -> SpamList:
        """The list stored at ``path``; empty when no path is set or the file is missing."""
        if path is None:
            return cls(())
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            return cls(())
        return cls(text.splitlines())

    def __len__(self) -> int:
        return len(self._hosts)

    def is_spam(self, host: str) -> bool:
        if not self._hosts or not host:
            return False
        candidate = _normalized(host)
        hosts = self._hosts
        while True:
            if candidate in hosts:
                return True
            dot = candidate.find(".")
            if dot < 0:
                return False
            candidate = candidate[dot + 1 :]


def parse_spam_list(text: str) -> list[str]:
    """The hosts of a downloaded list; DownloadError when it does not look like one."""
    lines = [_normalized(line) for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    hosts = [line for line in lines if _HOST.fullmatch(line)]
    if len(hosts) < MINIMUM_HOSTS:
        raise DownloadError(
            f"spam list download holds {len(hosts)} host names, expected at least {MINIMUM_HOSTS}"
        )
    if len(lines) - len(hosts) > MAXIMUM_BAD_LINE_SHARE * len(lines):
        raise DownloadError(
            f"spam list download has {len(lines) - len(hosts)} lines that are not host names"
        )
    return hosts


def update_spam_list(dest: Path, url: str = MATOMO_SPAM_LIST_URL,
                     progress: DownloadProgress | None = None) -> int:
    """Fetch, validate and atomically install the spam list at ``dest``; return its size.

    ``url`` may also be a local file (a list fetched elsewhere).
    """
    try:
        payload = fetch(url, progress)
    except DownloadError as error:
        raise DownloadError(f"spam list download failed: {error}") from error
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DownloadError("spam list download is not UTF-8 text") from error
    hosts = parse_spam_list(text)
    install(Path(dest), ("\n".join(hosts) + "\n").encode())
    return len(hosts)

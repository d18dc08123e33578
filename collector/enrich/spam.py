"""Referrer-spam blocklist: Matomo's community list, kept as a local file.

Events whose referrer host (or one of its parent domains) is listed are dropped before
they are counted. ``collector lists update`` refreshes the file; the server reads it
once at startup.
"""

from __future__ import annotations

import os
import re
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import IO

from collector.errors import CollectorError

MATOMO_SPAM_LIST_URL = (
    "https://raw.githubusercontent.com/matomo-org/referrer-spam-list/master/spammers.txt"
)
DOWNLOAD_TIMEOUT_SECONDS = 60
# The real list holds thousands of hosts; far fewer means a truncated or wrong download.
MINIMUM_HOSTS = 100
# A bad line or two should not block an update; a page of HTML must.
MAXIMUM_BAD_LINE_SHARE = 0.01
_HOST = re.compile(r"(?=.{1,253}$)(?:[a-z0-9_](?:[a-z0-9_-]{0,62}[a-z0-9])?\.)+[a-z0-9-]{2,63}")

Opener = Callable[[str], IO[bytes]]


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


def _default_opener(url: str) -> IO[bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": "collector-lists-update"})
    response: IO[bytes] = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    return response


def parse_spam_list(text: str) -> list[str]:
    """The hosts of a downloaded list; CollectorError when it does not look like one."""
    lines = [_normalized(line) for line in text.splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    hosts = [line for line in lines if _HOST.fullmatch(line)]
    if len(hosts) < MINIMUM_HOSTS:
        raise CollectorError(
            f"spam list download holds {len(hosts)} host names, expected at least {MINIMUM_HOSTS}"
        )
    if len(lines) - len(hosts) > MAXIMUM_BAD_LINE_SHARE * len(lines):
        raise CollectorError(
            f"spam list download has {len(lines) - len(hosts)} lines that are not host names"
        )
    return hosts


def update_spam_list(
    dest: Path, url: str = MATOMO_SPAM_LIST_URL, opener: Opener | None = None
) -> int:
    """Download, validate and atomically install the spam list at ``dest``; return its size."""
    try:
        with (opener or _default_opener)(url) as response:
            payload = response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise CollectorError(f"spam list download failed: {url}: {exc}") from exc
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CollectorError("spam list download is not UTF-8 text") from exc
    hosts = parse_spam_list(text)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=dest.parent, prefix=".download-")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write("\n".join(hosts) + "\n")
        # Same directory, so the rename is atomic: a reader sees the old or the new list.
        os.replace(temporary, dest)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return len(hosts)

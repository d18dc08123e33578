"""Download the free DB-IP Lite country database (``collector geoip update``).

DB-IP publishes one file per month; early in a month the new one may not exist yet, so
the previous month is tried next. The file is checked (opens, answers a lookup) before
it atomically replaces the current one, so a running server never sees half a file.
"""

from __future__ import annotations

import gzip
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from collector.errors import CollectorError

DBIP_URL_TEMPLATE = (
    "https://download.db-ip.com/free/dbip-country-lite-{year:04d}-{month:02d}.mmdb.gz"
)
DBIP_ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0"
DBIP_ATTRIBUTION_URL = "https://db-ip.com"
GEOIP_SUBDIRECTORY = "geoip"
GEOIP_FILENAME = "dbip-country-lite.mmdb"
DOWNLOAD_TIMEOUT_SECONDS = 60
# Well-known anycast resolvers: any real country database places at least one of them.
PROBE_ADDRESSES = ("8.8.8.8", "1.1.1.1", "9.9.9.9")
GZIP_MAGIC = b"\x1f\x8b"

Opener = Callable[[str], IO[bytes]]


def _default_opener(url: str) -> IO[bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": "collector-geoip-update"})
    response: IO[bytes] = urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_SECONDS)
    return response


def monthly_urls(template: str, now: datetime) -> list[str]:
    """This month's and last month's file addresses, in the order to try them."""
    previous = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return [
        template.format(year=now.year, month=now.month),
        template.format(year=previous[0], month=previous[1]),
    ]


def _download(urls: list[str], opener: Opener) -> bytes:
    failures = []
    for url in urls:
        try:
            with opener(url) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            failures.append(f"{url}: HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            failures.append(f"{url}: {exc}")
    raise CollectorError("geoip download failed: " + "; ".join(failures))


def _decompressed(payload: bytes) -> bytes:
    if not payload.startswith(GZIP_MAGIC):
        return payload
    try:
        return gzip.decompress(payload)
    except (OSError, EOFError) as exc:
        raise CollectorError(f"geoip download is not a valid gzip file: {exc}") from exc


def _country_of(record: Any) -> str:
    if not isinstance(record, dict):
        return ""
    country = record.get("country")
    if isinstance(country, dict):
        return str(country.get("iso_code") or "")
    return str(record.get("country_code") or "")


def verify_database(path: Path) -> None:
    """Raise CollectorError unless ``path`` opens and places a well-known address."""
    try:
        with maxminddb.open_database(str(path)) as reader:
            metadata = reader.metadata()
            if metadata.node_count <= 0:
                raise CollectorError("geoip download has an empty search tree")
            if not any(_country_of(reader.get(ip)) for ip in PROBE_ADDRESSES):
                raise CollectorError(
                    "geoip download answers no country for " + ", ".join(PROBE_ADDRESSES)
                )
    except (InvalidDatabaseError, ValueError, OSError) as exc:
        raise CollectorError(f"geoip download is not a MaxMind DB file: {exc}") from exc


def update_geoip_database(
    data_dir: Path,
    url: str | None = None,
    *,
    now: datetime | None = None,
    opener: Opener | None = None,
) -> Path:
    """Fetch, verify and install the DB-IP Lite country database; return its path.

    ``url`` may be a fixed address or a template with ``{year}``/``{month}`` fields
    (default: DB-IP's monthly file, falling back to the previous month).
    """
    template = url or DBIP_URL_TEMPLATE
    urls = monthly_urls(template, now or datetime.now(UTC))
    if urls[0] == urls[1]:
        urls = urls[:1]
    payload = _decompressed(_download(urls, opener or _default_opener))
    target_dir = Path(data_dir) / GEOIP_SUBDIRECTORY
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / GEOIP_FILENAME
    descriptor, temporary = tempfile.mkstemp(dir=target_dir, prefix=".download-", suffix=".mmdb")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
        verify_database(Path(temporary))
        # Same directory, so the rename is atomic: readers see the old or the new file.
        os.replace(temporary, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return target

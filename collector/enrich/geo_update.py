"""Download the free DB-IP Lite country database (``collector geoip update``).

DB-IP publishes one file per month; early in a month the new one may not exist yet, so
the previous month is tried next. The file is checked (opens, answers a lookup) before
it atomically replaces the current one, so a running server never sees half a file.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from collector.enrich.download import DownloadProgress, fetch, install
from collector.errors import DownloadError

DBIP_URL_TEMPLATE = (
    "https://download.db-ip.com/free/dbip-country-lite-{year:04d}-{month:02d}.mmdb.gz"
)
DBIP_ATTRIBUTION = "IP Geolocation by DB-IP (https://db-ip.com), licensed under CC BY 4.0"
DBIP_ATTRIBUTION_URL = "https://db-ip.com"
GEOIP_SUBDIRECTORY = "geoip"
GEOIP_FILENAME = "dbip-country-lite.mmdb"
# Well-known anycast resolvers: any real country database places at least one of them.
PROBE_ADDRESSES = ("8.8.8.8", "1.1.1.1", "9.9.9.9")
GZIP_MAGIC = b"\x1f\x8b"


def monthly_urls(template: str, now: datetime) -> list[str]:
    """This month's and last month's file addresses, in the order to try them."""
    previous = (now.year, now.month - 1) if now.month > 1 else (now.year - 1, 12)
    return [
        template.format(year=now.year, month=now.month),
        template.format(year=previous[0], month=previous[1]),
    ]


def _first_available(urls: list[str], progress: DownloadProgress | None) -> bytes:
    failures = []
    for url in urls:
        try:
            return fetch(url, progress)
        except DownloadError as error:
            failures.append(str(error))
    raise DownloadError("geoip download failed: " + "; ".join(failures))


def _decompressed(payload: bytes) -> bytes:
    if not payload.startswith(GZIP_MAGIC):
        return payload
    try:
        return gzip.decompress(payload)
    except (OSError, EOFError) as exc:
        raise DownloadError(f"geoip download is not a valid gzip file: {exc}") from exc


def _country_of(record: Any) -> str:
    if not isinstance(record, dict):
        return ""
    country = record.get("country")
    if isinstance(country, dict):
        return str(country.get("iso_code") or "")
    return str(record.get("country_code") or "")


def verify_database(path: Path) -> None:
    """Raise DownloadError unless ``path`` opens and places a well-known address."""
    try:
        with maxminddb.open_database(str(path)) as reader:
            metadata = reader.metadata()
            if metadata.node_count <= 0:
                raise DownloadError("geoip download has an empty search tree")
            if not any(_country_of(reader.get(ip)) for ip in PROBE_ADDRESSES):
                raise DownloadError(
                    "geoip download answers no country for " + ", ".join(PROBE_ADDRESSES)
                )
    except (InvalidDatabaseError, ValueError, OSError) as exc:
        raise DownloadError(f"geoip download is not a MaxMind DB file: {exc}") from exc


def update_geoip_database(
    data_dir: Path,
    url: str | None = None,
    *,
    now: datetime | None = None,
    progress: DownloadProgress | None = None,
) -> Path:
    """Fetch, verify and install the DB-IP Lite country database; return its path.

    ``url`` may be a fixed address or a template with ``{year}``/``{month}`` fields
    (default: DB-IP's monthly file, falling back to the previous month); it may also be a
    local file (a database fetched elsewhere).
    """
    template = url or DBIP_URL_TEMPLATE
    urls = monthly_urls(template, now or datetime.now(UTC))
    if urls[0] == urls[1]:
        urls = urls[:1]
    payload = _decompressed(_first_available(urls, progress))
    target = Path(data_dir) / GEOIP_SUBDIRECTORY / GEOIP_FILENAME
    install(target, payload, check=verify_database)
    return target

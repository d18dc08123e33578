"""IP address → country, region, (optional) city and ISP, from local MaxMind-format files.

Two schemas are read: GeoIP2/GeoLite2/DB-IP (``country.iso_code``,
``subdivisions[0].iso_code``, ``city.names.en``) and the flat one of the
``ip-location-db`` project (``country_code``, ``state1``, ``city``). The ASN database
gives the ISP as ``autonomous_system_organization`` (or flat ``as_organization``/``org``).

Readers are opened once at startup (memory-mapped) and swapped when the file on disk
changes; the check costs one clock read per lookup and one ``stat`` per 30 s.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from collector.errors import ConfigurationError

log = logging.getLogger(__name__)

GEOIP_SETTING = "COLLECTOR_GEOIP_DB"
ASN_SETTING = "COLLECTOR_ASN_DB"
RELOAD_CHECK_SECONDS = 30.0
# Off by default: an address cache would keep visitors' IPs in memory beyond their own
# request (PRIVACY: "the IP lives only in memory during one request"). Decoding a record
# costs ~2-9 µs; operators who need those µs can opt in with cache_size=4096.
DEFAULT_CACHE_SIZE = 0
# Decoding this many records at open time catches a corrupt data section at startup
# rather than on some visitor's lookup.
VALIDATION_RECORDS = 1000
NO_DATABASE = (
    "no geo database configured: country/region/ISP stay empty; run `collector geoip update`"
)


class Location(NamedTuple):
    # Coordinates are never kept: location stays at country/region (city only if enabled).
    country: str = ""
    region: str = ""
    city: str = ""
    isp: str = ""


UNKNOWN = Location()


class _Database:
    """One memory-mapped reader and the file identity it was opened from."""

    def __init__(self, path: Path, setting: str) -> None:
        self.path = path
        self.setting = setting
        self.signature = _signature(path, setting)
        self.reader = _open_validated(path, setting)
        self.kind = str(self.reader.metadata().database_type)

    def reopened_if_changed(self) -> _Database:
        try:
            if _signature(self.path, self.setting) == self.signature:
                return self
            fresh = _Database(self.path, self.setting)
        except ConfigurationError as exc:
            # Keep answering from the old file: a bad update must not stop ingestion.
            log.warning("keeping the loaded geo database: %s", exc)
            return self
        log.info("reloaded %s (%s)", self.path, fresh.kind)
        # The old reader is not closed here: a lookup on another thread may still use
        # it; it is unmapped when the last reference goes.
        return fresh


def _signature(path: Path, setting: str) -> tuple[int, int]:
    try:
        status = path.stat()
    except OSError as exc:
        raise ConfigurationError(f"{setting}: cannot read {path}: {exc.strerror}") from exc
    return status.st_mtime_ns, status.st_size


def _open_validated(path: Path, setting: str) -> Any:
    try:
        reader = maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except (OSError, InvalidDatabaseError, ValueError) as exc:
        raise ConfigurationError(
            f"{setting}: {path} is not a readable MaxMind DB file: {exc}"
        ) from exc
    try:
        for count, _ in enumerate(reader, start=1):
            if count >= VALIDATION_RECORDS:
                break
    except (InvalidDatabaseError, ValueError, KeyError) as exc:
        reader.close()
        raise ConfigurationError(f"{setting}: {path} is corrupt: {exc}") from exc
    return reader


def _record(database: _Database | None, ip: str) -> Any:
    if database is None:
        return None
    try:
        return database.reader.get(ip)
    except (ValueError, InvalidDatabaseError):
        # Not an address, IPv6 in an IPv4-only file, or a bad record: just unknown.
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _english_name(node: Any) -> str:
    if isinstance(node, dict):
        names = node.get("names")
        if isinstance(names, dict):
            return _text(names.get("en"))
    return _text(node)


def _place(record: Any, keep_city: bool) -> tuple[str, str, str]:
    """(country, region, city) from either schema; empty strings when absent."""
    if not isinstance(record, dict):
        return "", "", ""
    country_node = record.get("country")
    if isinstance(country_node, dict):  # GeoIP2 / GeoLite2 / DB-IP
        country = _text(country_node.get("iso_code")).upper()
        subdivisions = record.get("subdivisions")
        subdivision = ""
        if isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
            subdivision = _text(subdivisions[0].get("iso_code"))
        city = _english_name(record.get("city")) if keep_city else ""
    else:  # ip-location-db flat schema
        country = _text(record.get("country_code")).upper()
        subdivision = _text(record.get("state1"))
        city = _text(record.get("city")) if keep_city else ""
    # ISO 3166-2 form ("GB-ENG"); flat databases carry a name instead ("GB-England").
    region = f"{country}-{subdivision}" if country and subdivision else ""
    return country, region, city


def _isp(record: Any) -> str:
    if not isinstance(record, dict):
        return ""
    for key in ("autonomous_system_organization", "as_organization", "org"):
        value = record.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


class GeoLookup:
    """Country/region/ISP for an address, from databases opened once at startup."""

    def __init__(
        self,
        geoip_db: Path | None,
        asn_db: Path | None,
        keep_city: bool = False,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_every: float = RELOAD_CHECK_SECONDS,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._geo = _Database(Path(geoip_db), GEOIP_SETTING) if geoip_db else None
        self._asn = _Database(Path(asn_db), ASN_SETTING) if asn_db else None
        # City is off by default: collect only what is needed (PRIVACY "minimal fields").
        self._keep_city = keep_city
        self._clock = clock
        self._check_every = check_every
        self._next_check = clock() + check_every
        self._lock = threading.Lock()
        self._cache: Any = lru_cache(maxsize=cache_size)(self._resolve) if cache_size else None
        self._answer: Callable[[str], Location] = self._cache or self._resolve

    def describe(self) -> str:
        """One line for the startup log: what is loaded, or how to get a database."""
        if self._geo is None and self._asn is None:
            return NO_DATABASE
        parts = [f"{db.kind} from {db.path}" for db in (self._geo, self._asn) if db]
        city = "city kept" if self._keep_city else "city dropped"
        return f"geo: {'; '.join(parts)} ({city})"

    def lookup(self, ip: str) -> Location:
        """Location of ``ip``; empty fields when unknown, invalid or not configured."""
        # The address is only an argument: never stored, logged or (by default) cached.
        if self._clock() >= self._next_check:
            self._reload_if_changed()
        return self._answer(ip)

    def _resolve(self, ip: str) -> Location:
        country, region, city = _place(_record(self._geo, ip), self._keep_city)
        return Location(country, region, city, _isp(_record(self._asn, ip)))

    def _reload_if_changed(self) -> None:
        with self._lock:
            if self._clock() < self._next_check:
                return  # another thread just checked
            self._next_check = self._clock() + self._check_every
            geo = self._geo.reopened_if_changed() if self._geo else None
            asn = self._asn.reopened_if_changed() if self._asn else None
            if geo is not self._geo or asn is not self._asn:
                self._geo, self._asn = geo, asn
                self._clear_cache()

    def _clear_cache(self) -> None:
        if self._cache is not None:
            self._cache.cache_clear()

    def close(self) -> None:
        for database in (self._geo, self._asn):
            if database is not None:
                database.reader.close()
        self._clear_cache()

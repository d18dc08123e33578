"""IP address → country, region, (optional) city and ISP, from local MaxMind-format files.

Two schemas are read: GeoIP2/GeoLite2/DB-IP (``country.iso_code``,
``subdivisions[0].iso_code``, ``city.names.en``) and the flat one of the
``ip-location-db`` project (``country_code``, ``state1``, ``city``). The ASN database
gives the ISP as ``autonomous_system_organization`` (or flat ``as_organization``/``org``).

Readers are opened once at startup (memory-mapped) and swapped when the file on disk
changes: ``reload_if_changed`` is a background duty (``collector.reloading``), so a
lookup never touches the file system.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import maxminddb
from maxminddb.errors import InvalidDatabaseError

from collector.errors import ConfigurationError
from collector.reloading import ReloadingFile

GEOIP_SETTING = "COLLECTOR_GEOIP_DB"
ASN_SETTING = "COLLECTOR_ASN_DB"
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


class _Database(NamedTuple):
    """One memory-mapped reader and the kind of database it holds."""

    reader: Any
    kind: str


def _open_database(path: Path, setting: str) -> _Database:
    """The validated database at ``path``; ConfigurationError naming ``setting`` if not."""
    try:
        path.stat()
    except OSError as exc:
        raise ConfigurationError(f"{setting}: cannot read {path}: {exc.strerror}") from exc
    reader = _open_validated(path, setting)
    return _Database(reader, str(reader.metadata().database_type))


def _reloading(path: Path | None, setting: str) -> ReloadingFile[_Database] | None:
    if path is None:
        return None
    # Replaced readers are not closed: a lookup on another thread may still use one; it
    # is unmapped when the last reference goes.
    return ReloadingFile(Path(path), lambda opened: _open_database(opened, setting),
                         describe=lambda database: database.kind)


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


def _record(database: ReloadingFile[_Database] | None, ip: str) -> Any:
    if database is None:
        return None
    try:
        return database.current.reader.get(ip)
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
    """Country/region/ISP for an address, from databases opened at startup."""

    def __init__(
        self,
        geoip_db: Path | None,
        asn_db: Path | None,
        keep_city: bool = False,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._geo = _reloading(geoip_db, GEOIP_SETTING)
        self._asn = _reloading(asn_db, ASN_SETTING)
        self._files = [file for file in (self._geo, self._asn) if file is not None]
        # City is off by default: collect only what is needed (PRIVACY "minimal fields").
        self._keep_city = keep_city
        self._cache: Any = lru_cache(maxsize=cache_size)(self._resolve) if cache_size else None
        self._answer: Callable[[str], Location] = self._cache or self._resolve

    def describe(self) -> str:
        """One line for the startup log: what is loaded, or how to get a database."""
        if not self._files:
            return NO_DATABASE
        parts = [f"{file.current.kind} from {file.path}" for file in self._files]
        city = "city kept" if self._keep_city else "city dropped"
        return f"geo: {'; '.join(parts)} ({city})"

    def lookup(self, ip: str) -> Location:
        """Location of ``ip``; empty fields when unknown, invalid or not configured."""
        # The address is only an argument: never stored, logged or (by default) cached.
        return self._answer(ip)

    def _resolve(self, ip: str) -> Location:
        country, region, city = _place(_record(self._geo, ip), self._keep_city)
        return Location(country, region, city, _isp(_record(self._asn, ip)))

    def reload_if_changed(self) -> None:
        """Background duty: reopen the databases whose files changed on disk."""
        reloaded = [file.check() for file in self._files]
        if any(reloaded):
            self._clear_cache()

    def _clear_cache(self) -> None:
        if self._cache is not None:
            self._cache.cache_clear()

    def close(self) -> None:
        for file in self._files:
            file.current.reader.close()
        self._clear_cache()

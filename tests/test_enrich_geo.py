"""collector.enrich.geo and geo_update: MaxMind's test databases, download.

MaxMind's own test files come from the optional corpus ../shared/testdata/maxmind; those
tests skip without it, and tests/test_enrich_geo_layouts.py covers the same layouts on
databases it writes itself. Reloading a changed database is tested with the other data
files in tests/test_reloading.py.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pytest

from collector.enrich import DBIP_ATTRIBUTION, GeoLookup, Location, update_geoip_database
from collector.enrich.geo_update import GEOIP_FILENAME
from collector.errors import CollectorError, ConfigurationError
from tests.conftest import shared_testdata
from tests.mmdb_files import write_mmdb

CITY = "GeoIP2-City-Test.mmdb"
LITE_CITY = "GeoLite2-City-Test.mmdb"
COUNTRY = "GeoLite2-Country-Test.mmdb"
ASN = "GeoLite2-ASN-Test.mmdb"
BROKEN = "MaxMind-DB-test-broken-pointers-24.mmdb"


@pytest.fixture(scope="module")
def maxmind() -> Path:
    return shared_testdata("maxmind")


@pytest.mark.parametrize("database", [CITY, LITE_CITY])
def test_geoip2_city_schema(maxmind: Path, database: str) -> None:
    geo = GeoLookup(maxmind / database, None)
    assert geo.lookup("81.2.69.142") == Location("GB", "GB-ENG", "", "")
    assert geo.lookup("89.160.20.112") == Location("SE", "SE-E", "", "")
    assert geo.lookup("216.160.83.56").region == "US-WA"


def test_city_only_when_asked(maxmind: Path) -> None:
    # City-level location is off by default (PRIVACY: minimal fields).
    assert GeoLookup(maxmind / CITY, None).lookup("81.2.69.142").city == ""
    assert GeoLookup(maxmind / CITY, None, keep_city=True).lookup("81.2.69.142").city == "London"


def test_country_database_and_ipv6(maxmind: Path) -> None:
    assert GeoLookup(maxmind / COUNTRY, None).lookup("2001:218::") == Location("JP", "", "", "")


def test_asn_database_gives_isp(maxmind: Path) -> None:
    geo = GeoLookup(maxmind / COUNTRY, maxmind / ASN)
    assert geo.lookup("1.128.0.0").isp == "Telstra Pty Ltd"
    assert geo.lookup("89.160.20.112") == Location("SE", "", "", "Bredband2 AB")


@pytest.mark.parametrize("ip", ["", "not an ip", "999.1.1.1", "10.0.0.1", "::1"])
def test_invalid_or_unknown_address_is_empty(maxmind: Path, ip: str) -> None:
    assert GeoLookup(maxmind / CITY, maxmind / ASN).lookup(ip) == Location("", "", "", "")


def test_location_has_no_coordinates() -> None:
    # Coordinates are never kept: the type has no field for them.
    assert Location._fields == ("country", "region", "city", "isp")


def test_no_database_configured() -> None:
    geo = GeoLookup(None, None)
    assert geo.lookup("81.2.69.142") == Location()
    assert "collector geoip update" in geo.describe()


def test_describe_names_loaded_databases(maxmind: Path) -> None:
    description = GeoLookup(maxmind / CITY, maxmind / ASN).describe()
    assert "GeoIP2-City" in description and "GeoLite2-ASN" in description


def test_broken_database_fails_at_startup(maxmind: Path) -> None:
    with pytest.raises(ConfigurationError, match="COLLECTOR_GEOIP_DB: .* is corrupt") as caught:
        GeoLookup(maxmind / BROKEN, None)
    assert str(maxmind / BROKEN) in str(caught.value)


def test_missing_or_garbage_files_fail_at_startup(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="COLLECTOR_ASN_DB"):
        GeoLookup(None, tmp_path / "missing.mmdb")
    garbage = tmp_path / "garbage.mmdb"
    garbage.write_bytes(b"not a database at all" * 100)
    with pytest.raises(ConfigurationError, match="COLLECTOR_GEOIP_DB"):
        GeoLookup(garbage, None)


# --- geo_update against a local HTTP server -------------------------------------------


def _gzip_country_db(directory: Path, name: str) -> None:
    database = write_mmdb(
        directory / "plain.mmdb",
        {
            "8.8.8.0/24": {"country": {"iso_code": "US"}},
            "1.1.1.0/24": {"country": {"iso_code": "AU"}},
        },
        kind="DBIP-Country-Lite",
    )
    (directory / name).write_bytes(gzip.compress(database.read_bytes()))
    database.unlink()


def test_update_downloads_verifies_and_installs(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    _gzip_country_db(root, "dbip-country-lite-2026-11.mmdb.gz")
    data_dir = tmp_path / "data"
    template = base + "/dbip-country-lite-{year:04d}-{month:02d}.mmdb.gz"
    path = update_geoip_database(data_dir, template, now=datetime(2026, 11, 22, tzinfo=UTC))
    assert path == data_dir / "geoip" / GEOIP_FILENAME
    assert GeoLookup(path, None).lookup("8.8.8.8").country == "US"
    assert [p.name for p in path.parent.iterdir()] == [GEOIP_FILENAME]


def test_update_falls_back_to_previous_month(served: tuple[Path, str], tmp_path: Path) -> None:
    root, base = served
    _gzip_country_db(root, "dbip-country-lite-2025-12.mmdb.gz")
    template = base + "/dbip-country-lite-{year:04d}-{month:02d}.mmdb.gz"
    path = update_geoip_database(tmp_path, template, now=datetime(2026, 1, 2, tzinfo=UTC))
    assert GeoLookup(path, None).lookup("1.1.1.1").country == "AU"


def test_update_rejects_a_bad_file_and_keeps_the_old_one(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = served
    _gzip_country_db(root, "good.mmdb.gz")
    installed = update_geoip_database(tmp_path, base + "/good.mmdb.gz")
    before = installed.read_bytes()
    (root / "bad.mmdb.gz").write_bytes(gzip.compress(b"<html>not found</html>"))
    with pytest.raises(CollectorError, match="not a MaxMind DB"):
        update_geoip_database(tmp_path, base + "/bad.mmdb.gz")
    assert installed.read_bytes() == before
    assert [p.name for p in installed.parent.iterdir()] == [GEOIP_FILENAME]


def test_update_rejects_a_database_without_countries(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    root, base = served
    write_mmdb(root / "empty.mmdb", {"192.0.2.0/24": {"name": "documentation"}})
    with pytest.raises(CollectorError, match="no country"):
        update_geoip_database(tmp_path, base + "/empty.mmdb")


def test_update_reports_missing_files(served: tuple[Path, str], tmp_path: Path) -> None:
    _, base = served
    with pytest.raises(CollectorError, match="HTTP 404"):
        update_geoip_database(tmp_path, base + "/missing-{year}-{month:02d}.mmdb.gz")


def test_attribution_is_recorded() -> None:
    assert "IP Geolocation by DB-IP" in DBIP_ATTRIBUTION
    assert "https://db-ip.com" in DBIP_ATTRIBUTION

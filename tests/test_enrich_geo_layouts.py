"""collector.enrich.geo on databases written here, in every layout it reads.

Self-contained twins of the tests on MaxMind's own test files (tests/test_enrich_geo.py,
which need ../shared): GeoIP2/GeoLite2 city and country, GeoLite2 ASN, and the flat
layout of the ip-location-db project, each over IPv4 and IPv6. Addresses and AS numbers
come from the documentation ranges (RFC 5737, RFC 3849, RFC 5398).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from collector.enrich import GeoLookup, Location
from collector.errors import ConfigurationError
from collector.storage import Store
from tests.conftest import CHROME_UA, flush, running_app
from tests.mmdb_files import corrupt_data_section, write_mmdb

# Records shaped as GeoIP2-City answers them: names in several languages, coordinates,
# postcode, time zone and the registering country, none of which may come out.
LONDON: dict[str, Any] = {
    "city": {"geoname_id": 2643743, "names": {"en": "London", "fr": "Londres"}},
    "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe"}},
    "country": {"geoname_id": 2635167, "iso_code": "GB", "names": {"en": "United Kingdom"}},
    "location": {"accuracy_radius": 20, "latitude": 51.4991, "longitude": -0.1337,
                 "time_zone": "Europe/London"},
    "postal": {"code": "SW1A"},
    "registered_country": {"geoname_id": 6252001, "iso_code": "US",
                           "names": {"en": "United States"}},
    # Most general first: England, then the City of Westminster.
    "subdivisions": [{"geoname_id": 6269131, "iso_code": "ENG", "names": {"en": "England"}},
                     {"geoname_id": 3333218, "iso_code": "WSM",
                      "names": {"en": "Westminster"}}],
}
MILTON: dict[str, Any] = {
    "city": {"geoname_id": 5803556, "names": {"en": "Milton"}},
    "country": {"geoname_id": 6252001, "iso_code": "US", "names": {"en": "United States"}},
    "location": {"latitude": 47.2513, "longitude": -122.3149, "time_zone": "America/Los_Angeles"},
    "postal": {"code": "98354"},
    "subdivisions": [{"geoname_id": 5815135, "iso_code": "WA", "names": {"en": "Washington"}}],
}
MUNICH: dict[str, Any] = {
    "city": {"geoname_id": 2867714, "names": {"de": "München", "en": "Munich"}},
    "country": {"geoname_id": 2921044, "iso_code": "DE", "names": {"de": "Deutschland"}},
    "subdivisions": [{"geoname_id": 2951839, "iso_code": "BY", "names": {"en": "Bavaria"}}],
}
# GeoLite2-Country: no subdivisions, no city.
SWEDEN: dict[str, Any] = {
    "continent": {"code": "EU", "geoname_id": 6255148, "names": {"en": "Europe"}},
    "country": {"geoname_id": 2661886, "iso_code": "SE", "names": {"en": "Sweden"}},
    "registered_country": {"geoname_id": 2661886, "iso_code": "SE", "names": {"en": "Sweden"}},
}
JAPAN: dict[str, Any] = {"country": {"geoname_id": 1861060, "iso_code": "JP"}}

# The TestClient's address (tests/conftest.py) sits in 203.0.113.0/24.
CITY_NETWORKS = {"203.0.113.0/24": LONDON, "198.51.100.0/24": MILTON,
                 "2001:db8:1000::/36": MUNICH, "192.0.2.0/24": SWEDEN}
COUNTRY_NETWORKS = {"192.0.2.0/24": SWEDEN, "2001:db8:2000::/36": JAPAN}
ASN_NETWORKS = {
    "203.0.113.0/24": {"autonomous_system_number": 64496,
                       "autonomous_system_organization": "Example Broadband Ltd"},
    "2001:db8::/34": {"autonomous_system_number": 64500,
                      "autonomous_system_organization": "Beispielnetz GmbH"},
}
# ip-location-db: country_code, state1 (a name, not a code), state2, city, postcode,
# latitude, longitude, timezone; its ASN files use GeoLite2's two keys.
FLAT_CITY_NETWORKS = {
    "203.0.113.0/24": {"country_code": "GB", "state1": "England", "state2": "Greater London",
                       "city": "London", "postcode": "SW1A", "latitude": 51.4991,
                       "longitude": -0.1337, "timezone": "Europe/London"},
    "2001:db8:2000::/36": {"country_code": "JP", "state1": "Tokyo", "state2": "",
                           "city": "Tokyo", "postcode": "100-0001", "latitude": 35.6895,
                           "longitude": 139.6917, "timezone": "Asia/Tokyo"},
}
FLAT_COUNTRY_NETWORKS = {"198.51.100.0/24": {"country_code": "FR"},
                         "2001:db8:3000::/36": {"country_code": "BR"}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("geo-layouts")


@pytest.fixture(scope="module")
def city(folder: Path) -> Path:
    return write_mmdb(folder / "city.mmdb", CITY_NETWORKS, "GeoIP2-City")


@pytest.fixture(scope="module")
def asn(folder: Path) -> Path:
    return write_mmdb(folder / "asn.mmdb", ASN_NETWORKS, "GeoLite2-ASN")


@pytest.fixture(scope="module")
def flat_city(folder: Path) -> Path:
    return write_mmdb(folder / "flat-city.mmdb", FLAT_CITY_NETWORKS, "dbip-city-lite")


def test_city_layout_gives_country_and_iso_3166_2_region(city: Path) -> None:
    geo = GeoLookup(city, None)
    # The first subdivision is the region; coordinates, postcode and the registering
    # country never come out (Location has no field for them).
    assert geo.lookup("203.0.113.9") == Location("GB", "GB-ENG", "", "")
    assert geo.lookup("198.51.100.20") == Location("US", "US-WA", "", "")
    assert geo.lookup("2001:db8:1000::1") == Location("DE", "DE-BY", "", "")
    assert geo.lookup("192.0.2.1") == Location("SE", "", "", "")


def test_city_name_only_when_asked(city: Path) -> None:
    kept = GeoLookup(city, None, keep_city=True)
    assert kept.lookup("203.0.113.9") == Location("GB", "GB-ENG", "London", "")
    assert kept.lookup("2001:db8:1000::1").city == "Munich"  # the English name
    assert kept.lookup("192.0.2.1").city == ""  # a record without a city
    assert GeoLookup(city, None, keep_city=False).lookup("198.51.100.20").city == ""


def test_country_layout(folder: Path) -> None:
    geo = GeoLookup(write_mmdb(folder / "country.mmdb", COUNTRY_NETWORKS, "GeoLite2-Country"),
                    None, keep_city=True)
    assert geo.lookup("192.0.2.200") == Location("SE", "", "", "")
    assert geo.lookup("2001:db8:2abc::7") == Location("JP", "", "", "")


def test_ipv6_address_in_an_ipv4_only_database_is_unknown(folder: Path) -> None:
    path = write_mmdb(folder / "country-ipv4.mmdb", {"192.0.2.0/24": SWEDEN},
                      "GeoLite2-Country", ip_version=4)
    geo = GeoLookup(path, None)
    assert geo.lookup("192.0.2.1").country == "SE"
    assert geo.lookup("2001:db8::1") == Location()


def test_asn_layout_gives_the_isp(city: Path, asn: Path) -> None:
    geo = GeoLookup(city, asn)
    assert geo.lookup("203.0.113.9") == Location("GB", "GB-ENG", "", "Example Broadband Ltd")
    assert geo.lookup("2001:db8:1000::1") == Location("DE", "DE-BY", "", "Beispielnetz GmbH")
    assert geo.lookup("198.51.100.20").isp == ""  # in the city file only
    assert GeoLookup(None, asn).lookup("203.0.113.9") == Location(isp="Example Broadband Ltd")


def test_ip_location_db_layout(flat_city: Path, asn: Path) -> None:
    kept = GeoLookup(flat_city, asn, keep_city=True)
    # The flat layout names the region instead of coding it.
    assert kept.lookup("203.0.113.9") == Location("GB", "GB-England", "London",
                                                  "Example Broadband Ltd")
    assert kept.lookup("2001:db8:2000::1") == Location("JP", "JP-Tokyo", "Tokyo",
                                                       "Beispielnetz GmbH")
    assert GeoLookup(flat_city, None).lookup("203.0.113.9") == Location("GB", "GB-England")


def test_ip_location_db_country_layout(folder: Path) -> None:
    path = write_mmdb(folder / "flat-country.mmdb", FLAT_COUNTRY_NETWORKS, "geo-whois-asn-country")
    geo = GeoLookup(path, None, keep_city=True)
    assert geo.lookup("198.51.100.1") == Location("FR")
    assert geo.lookup("2001:db8:3000::1") == Location("BR")


@pytest.mark.parametrize("key", ["as_organization", "org"])
def test_other_flat_asn_keys(folder: Path, key: str) -> None:
    path = write_mmdb(folder / f"asn-{key}.mmdb", {"192.0.2.0/24": {key: "Example Transit"}})
    assert GeoLookup(None, path).lookup("192.0.2.1").isp == "Example Transit"


@pytest.mark.parametrize("ip", ["", "not an ip", "999.1.1.1", "10.0.0.1", "::1",
                                "198.18.0.1", "2001:db8:f000::1", "2001:db8:1000::1/64"])
def test_unknown_or_invalid_address_is_empty(flat_city: Path, asn: Path, ip: str) -> None:
    assert GeoLookup(flat_city, asn, keep_city=True).lookup(ip) == Location()


def test_describe_names_each_database(city: Path, asn: Path) -> None:
    description = GeoLookup(city, asn).describe()
    assert f"GeoIP2-City from {city}" in description
    assert f"GeoLite2-ASN from {asn}" in description
    assert "city dropped" in description
    assert "city kept" in GeoLookup(city, None, keep_city=True).describe()


@pytest.mark.parametrize(("geoip", "setting"), [(True, "COLLECTOR_GEOIP_DB"),
                                                 (False, "COLLECTOR_ASN_DB")])
def test_corrupt_records_fail_at_startup(tmp_path: Path, geoip: bool, setting: str) -> None:
    path = corrupt_data_section(write_mmdb(tmp_path / "corrupt.mmdb", CITY_NETWORKS))
    with pytest.raises(ConfigurationError, match=setting) as caught:
        GeoLookup(path, None) if geoip else GeoLookup(None, path)
    assert "corrupt" in str(caught.value) and str(path) in str(caught.value)


# --- through ingest: the settings reach the lookup, the lookup reaches the stored row --


@pytest.mark.parametrize(("geo_city", "stored_city"), [(False, ""), (True, "London")])
def test_ingest_stores_the_location_of_the_client(store: Store, engine_url: str, city: Path,
                                                  asn: Path, geo_city: bool,
                                                  stored_city: str) -> None:
    site = f"geo-city-{str(geo_city).lower()}.test"
    with running_app(store, engine_url, geoip_db=city, asn_db=asn, geo_city=geo_city) as client:
        response = client.post("/api/event", headers={"User-Agent": CHROME_UA},
                               content=f'{{"n":"pageview","u":"https://{site}/","d":"{site}"}}')
        assert response.status_code == 202 and "x-collector-dropped" not in response.headers
        flush(client)
    stored = store.rows("SELECT country, region, city, isp FROM events WHERE site = {s:String}",
                        {"s": site})
    assert stored == [("GB", "GB-ENG", stored_city, "Example Broadband Ltd")]

"""Settings: parsed from the environment with clear errors, every one documented."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from collector.errors import ConfigurationError
from collector.settings import Settings, documented_settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = README.read_text()
    for variable, _default, help_text in documented_settings():
        assert f"| `{variable}` |" in readme, f"{variable} is missing from README.md"
        assert help_text in readme, f"README's text for {variable} is out of date"


def test_values_are_parsed() -> None:
    settings = Settings.from_env({
        "COLLECTOR_PORT": "9000", "COLLECTOR_HONOR_DNT": "off",
        "COLLECTOR_TRUSTED_PROXIES": "10.0.0.0/8, fd00::/8", "COLLECTOR_SITES": "a.com,b.org",
        "COLLECTOR_GEOIP_DB": "/x/geo.mmdb", "COLLECTOR_FLUSH_INTERVAL": "0.5",
    })
    assert settings.port == 9000
    assert settings.honor_dnt is False
    assert settings.trusted_proxies == (ipaddress.ip_network("10.0.0.0/8"),
                                        ipaddress.ip_network("fd00::/8"))
    assert settings.sites == ("a.com", "b.org")
    assert settings.geoip_db == Path("/x/geo.mmdb")
    assert settings.flush_interval == 0.5


def test_default_store_is_embedded_under_the_data_directory() -> None:
    settings = Settings.from_env({"COLLECTOR_DATA_DIR": "/srv/analytics"})
    assert settings.store_url == "chdb:///srv/analytics/clickhouse"


@pytest.mark.parametrize(("variable", "value"), [
    ("COLLECTOR_PORT", "eighty"), ("COLLECTOR_HONOR_DNT", "perhaps"),
    ("COLLECTOR_TRUSTED_PROXIES", "10.0.0.0/33"),
])
def test_a_bad_value_names_its_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_env({variable: value})

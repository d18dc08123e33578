"""`collector check`: the statement follows the live configuration, warns of each risky
setting (and only then), and its Markdown carries the geo database's attribution."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from collector.enrich.geo_update import DBIP_ATTRIBUTION
from collector.operations import OperationContext
from collector.operations.compliance import check, declared_columns, statement_markdown
from collector.operations.retention import set_tiers
from collector.settings import Settings
from collector.sites import add_site
from collector.storage import Store, apply_retention, migrate, open_store
from tests import test_cli
from tests.conftest import CHROME_UA, fresh_database_name, running_app
from tests.mmdb_files import write_mmdb
from tests.reporting_data import SITE
from tests.test_cli import invoke, parsed

GEO_RECORD = {"country": {"iso_code": "DE"}}
cli_env = test_cli.cli_env  # the command line's fixture: its own database


@pytest.fixture(scope="module", autouse=True)
def configured_site(store: Store) -> Iterator[None]:
    add_site(store, SITE, "Europe/Berlin")
    yield


def statement(store: Store, tmp_path: Path, server_state: Any = None,
              **settings: Any) -> dict[str, Any]:
    settings.setdefault("data_dir", tmp_path)  # no downloaded geo database unless a test adds one
    return check(OperationContext(store, Settings.from_env({}, **settings),
                                  server_state=server_state))


def codes(found: dict[str, Any]) -> list[str]:
    return [warning["code"] for warning in found["warnings"]]


def fresh_store(engine_url: str, label: str) -> Store:
    opened = open_store(engine_url, fresh_database_name(label))
    migrate(opened)
    return opened


def test_the_default_configuration_with_a_site_gives_no_warning(store: Store,
                                                                tmp_path: Path) -> None:
    found = statement(store, tmp_path)
    assert found["warnings"] == []
    assert found["sites"] == {"domains": [SITE], "dev_mode": False}
    assert found["retention"]["sites"] == [{"site": SITE, "raw_months": 13, "rollup_months": 25}]
    assert found["retention"]["enforced_months"]["events"] == 13
    assert found["consent"]["honor_dnt"] is True
    assert found["proxies"]["untrusted_forwarding"] is None  # not inside a running server
    assert found["undeclared_columns"] == []


@pytest.mark.parametrize(("settings", "code"), [
    ({"geo_city": True}, "city"),
    ({"retention_months": 26}, "raw-retention"),
    ({"honor_dnt": False}, "consent"),
    ({"scrub_paths": False}, "scrub-paths"),
])
def test_each_risky_setting_gives_its_warning(store: Store, tmp_path: Path,
                                              settings: dict[str, Any], code: str) -> None:
    assert codes(statement(store, tmp_path, **settings)) == [code]


def test_raw_retention_of_25_months_is_not_a_warning(store: Store, tmp_path: Path) -> None:
    assert codes(statement(store, tmp_path, retention_months=25)) == []


def test_no_site_configured_is_dev_mode(engine_url: str, tmp_path: Path) -> None:
    empty = fresh_store(engine_url, "compliance dev mode")
    found = statement(empty, tmp_path)
    assert codes(found) == ["dev-mode"] and found["sites"]["dev_mode"]
    assert codes(statement(empty, tmp_path, sites=("example.org",))) == []


def test_salts_past_their_48_hours_are_a_warning(engine_url: str, tmp_path: Path) -> None:
    store = fresh_store(engine_url, "compliance salts")
    old = datetime.now(UTC).date() - timedelta(days=3)
    store.command("INSERT INTO salts (day, salt, created_ms) VALUES ({day:Date}, 'ab', 1)",
                  {"day": old})
    found = statement(store, tmp_path, sites=(SITE,))
    assert codes(found) == ["salts"] and found["salts"]["overdue"] == [old.isoformat()]


def test_forwarding_headers_from_untrusted_peers_warn_only_without_trusted_proxies(
        store: Store, engine_url: str, tmp_path: Path) -> None:
    event = {"n": "pageview", "u": f"https://{SITE}/", "d": SITE}
    headers = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}
    for trusted, forwarded, expected in [((), False, []), ((), True, ["forwarded-headers"]),
                                         (("10.0.0.0/8",), True, [])]:
        overrides = {"trusted_proxies": Settings.from_env(
            {"COLLECTOR_TRUSTED_PROXIES": ",".join(trusted)}).trusted_proxies}
        with running_app(store, engine_url, **overrides) as client:
            extra = {"X-Forwarded-For": "198.51.100.7"} if forwarded else {}
            assert client.post("/api/event", json=event,
                               headers={**headers, **extra}).status_code == 202
            state = client.app.state  # type: ignore[attr-defined]
            found = statement(store, tmp_path, server_state=state, **overrides)
        assert codes(found) == expected, (trusted, forwarded)
        assert found["proxies"]["untrusted_forwarding"] == int(forwarded)


def test_every_stored_column_is_described(store: Store, tmp_path: Path) -> None:
    groups = statement(store, tmp_path)["collected"]
    assert {column for group in groups for column in group["columns"]} == declared_columns()
    assert "other" not in [group["name"] for group in groups]


def test_what_is_stored_follows_the_settings(store: Store, tmp_path: Path) -> None:
    def stored(**settings: Any) -> dict[str, bool]:
        return {group["name"]: group["stored"]
                for group in statement(store, tmp_path, **settings)["collected"]}

    assert stored()["location"] is False and stored()["city"] is False
    geo = write_mmdb(tmp_path / "city.mmdb", {"192.0.2.0/24": GEO_RECORD}, "GeoLite2-City")
    assert stored(geoip_db=geo)["location"] is True and stored(geoip_db=geo)["city"] is False
    assert stored(geoip_db=geo, geo_city=True)["city"] is True
    assert stored(asn_db=geo)["isp"] is True


def test_enforced_retention_is_read_from_the_tables_ttl(engine_url: str,
                                                         tmp_path: Path) -> None:
    store = fresh_store(engine_url, "compliance ttl")
    apply_retention(store, 30)
    found = statement(store, tmp_path, sites=(SITE,), retention_months=30)
    enforced = found["retention"]["enforced_months"]
    assert enforced["events"] == enforced["visits"] == 30
    assert enforced["visits_rollup_daily"] == enforced["events_rollup_daily"] == 25
    assert codes(found) == ["raw-retention"]


def test_the_markdown_carries_db_ip_attribution_when_its_database_is_used(
        store: Store, tmp_path: Path) -> None:
    downloaded = tmp_path / "geoip" / "dbip-country-lite.mmdb"
    downloaded.parent.mkdir()
    write_mmdb(downloaded, {"192.0.2.0/24": GEO_RECORD}, "DBIP-Country-Lite")
    found = statement(store, tmp_path)
    assert found["geoip"]["source"] == "DB-IP Lite"
    markdown = statement_markdown(found)
    assert DBIP_ATTRIBUTION in markdown and "## Location data" in markdown
    other = write_mmdb(tmp_path / "other.mmdb", {"192.0.2.0/24": GEO_RECORD},
                       "GeoLite2-Country")
    found = statement(store, tmp_path, geoip_db=other)
    assert found["geoip"]["source"] == "GeoLite2-Country"
    assert "DB-IP" not in statement_markdown(found)


def test_the_markdown_states_the_live_configuration(store: Store, tmp_path: Path) -> None:
    markdown = statement_markdown(statement(store, tmp_path))
    assert f"covers {SITE}" in markdown
    assert f"| {SITE} | 13 months | 25 months |" in markdown
    assert "(`Sec-GPC: 1`) are not recorded at all" in markdown
    assert "- IP addresses, in any form." in markdown
    assert "- Country and region" not in markdown and "- The city" not in markdown  # no geo db
    geo = write_mmdb(tmp_path / "city.mmdb", {"192.0.2.0/24": GEO_RECORD}, "GeoLite2-City")
    with_city = statement_markdown(statement(store, tmp_path, geoip_db=geo, geo_city=True))
    assert "- Country and region" in with_city and "- The city" in with_city
    changed = statement_markdown(statement(store, tmp_path, honor_dnt=False,
                                           retention_months=6))
    assert "are not acted on" in changed and f"| {SITE} | 6 months |" in changed
    assert "warning" not in changed.lower()  # operator warnings stay out of it


def test_collector_check_prints_the_statement_its_json_and_markdown(
        cli_env: dict[str, str]) -> None:
    shown = invoke(cli_env, "check")
    assert shown.exit_code == 0, shown.stderr
    assert "Sites: none configured (dev mode)" in shown.stdout
    assert "warning: no site is configured" in shown.stdout
    assert codes(parsed(invoke(cli_env, "check", "--json"))) == ["dev-mode"]
    markdown = invoke(cli_env, "check", "--markdown")
    assert markdown.exit_code == 0 and markdown.stdout.startswith("# Web analytics")
    assert markdown.stderr == ("collector: warning: no site is configured: events for every "
                               "domain are accepted (add sites with `collector sites add` "
                               "or COLLECTOR_SITES)\n")
    assert invoke(cli_env, "check", "--markdown", "--json").exit_code == 2


def test_retention_is_stated_per_site_and_tier(engine_url: str, tmp_path: Path) -> None:
    store = fresh_store(engine_url, "compliance tiers")
    add_site(store, SITE)
    add_site(store, "shop.example")
    settings = Settings.from_env({}, data_dir=tmp_path, rollup_retention_months=0)
    set_tiers(OperationContext(store, settings), "shop.example", raw_months=6,
              rollup_months=12)
    found = statement(store, tmp_path, rollup_retention_months=0)
    assert found["retention"]["sites"] == [
        {"site": SITE, "raw_months": 13, "rollup_months": None},  # 0: kept until removed
        {"site": "shop.example", "raw_months": 6, "rollup_months": 12}]
    markdown = statement_markdown(found)
    assert f"| {SITE} | 13 months | until removed |" in markdown
    assert "| shop.example | 6 months | 12 months |" in markdown

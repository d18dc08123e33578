"""Retention in two tiers per site: the settings' TTL, sites' own tiers, and the purge."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from collector.errors import ConfigurationError, InvalidField
from collector.operations.retention import DailyPurge, months_before
from collector.reports.sampling import Sampler
from collector.settings import Settings
from collector.sites import add_site
from collector.storage import Store, migrate, open_store
from tests import test_cli
from tests.removal_support import (
    files_holding,
    own_store,
    reports_disagree,
    row_counts,
    run,
    token,
)
from tests.reporting_data import SITE, at, day, make_event, sample_site_events, store_events
from tests.test_cli import CLI_DATABASE, assert_fails_in_one_line, invoke, parsed
from tests.test_drops import store_drops

OTHER = "other.test"
# Days relative to reporting_data.DAY0 (20 days ago): 45 and 100 days ago. With a raw tier
# of 1 month and a rollup tier of 2, the first keeps only its rollups, the second nothing.
MIDDLE, OLD = -25, -80
ROLLUP_TABLES = ("visits_rollup", "visits_rollup_daily", "events_rollup_daily", "drops")
cli_env = test_cli.cli_env  # the command tests' fixture: an empty `collector` database


@pytest.fixture
def seeded(engine_url: str) -> tuple[Store, dict[str, str]]:
    """SITE with a raw tier of 1 month and rollups of 2, OTHER on the settings' tiers."""
    store = own_store(engine_url, "retention")
    tokens = {"middle": token(), "old": token()}
    store_events(store, [
        *sample_site_events(),
        make_event(at("10:00", MIDDLE), 20, f"/middle/{tokens['middle']}"),
        make_event(at("10:05", MIDDLE), 20, "/pricing"),
        make_event(at("11:00", MIDDLE), 21, "/other-middle", site=OTHER),
        make_event(at("10:00", OLD), 30, f"/old/{tokens['old']}"),
        make_event(at("12:00"), 31, "/other-now", site=OTHER),
    ])
    # Drop counts keep to the rollups' tier.
    store_drops(store, [(SITE, at("10:00", OLD), "bot"), (SITE, at("10:00", MIDDLE), "spam"),
                        (SITE, at("10:00"), "bot"), (OTHER, at("11:00", MIDDLE), "bot")])
    run(store, "retention.set", site=SITE, raw_months=1, rollup_months=2)
    return store, tokens


def month_of(offset: int) -> str:
    return day(offset).strftime("%Y%m")


def test_the_rollup_tier_is_a_setting_from_0_to_1200_months() -> None:
    assert Settings().rollup_retention_months == 25
    assert Settings.from_env({"COLLECTOR_ROLLUP_RETENTION_MONTHS": "0"}
                             ).rollup_retention_months == 0
    with pytest.raises(ConfigurationError, match="COLLECTOR_ROLLUP_RETENTION_MONTHS='1201'"):
        Settings.from_env({"COLLECTOR_ROLLUP_RETENTION_MONTHS": "1201"})


def test_the_rollups_ttl_follows_its_setting(engine_url: str) -> None:
    store = own_store(engine_url, "retention_ttl")

    def ddl(table: str) -> str:
        return str(store.rows("SELECT create_table_query FROM system.tables WHERE database = "
                              "currentDatabase() AND name = {t:String}", {"t": table})[0][0])

    migrate(store, rollup_retention_months=30)
    assert all("toIntervalMonth(30)" in ddl(table) for table in ROLLUP_TABLES)
    assert "toIntervalMonth(13)" in ddl("events") and "toIntervalMonth(13)" in ddl("visits")
    migrate(store)  # a caller not knowing the setting leaves the rollups' TTL alone
    assert all("toIntervalMonth(30)" in ddl(table) for table in ROLLUP_TABLES)
    migrate(store, rollup_retention_months=0)
    assert all(" TTL " not in ddl(table) for table in ROLLUP_TABLES)
    assert "toIntervalMonth(13)" in ddl("events")
    with pytest.raises(ConfigurationError, match="rollups must be kept at least as long"):
        migrate(store, retention_months=13, rollup_retention_months=6)


def test_a_dry_run_counts_what_would_go_and_changes_nothing(
        seeded: tuple[Store, dict[str, str]]) -> None:
    store, _ = seeded
    before = row_counts(store)
    result = run(store, "retention.purge")
    assert result["dry_run"] is True
    assert result["tables"]["events"]["rows"] == 3  # SITE's two days, not OTHER's
    assert result["tables"]["visits"]["rows"] == 2
    # Rollups: only the oldest day goes; one hour, the daily total and its dimensions.
    assert result["tables"]["visits_rollup"]["rows"] == 1
    assert result["tables"]["events_rollup_daily"]["rows"] == 1
    assert result["tables"]["drops"]["rows"] == 1
    assert all(entry["bytes"] > 0 for entry in result["tables"].values())
    assert result["rows"] == sum(entry["rows"] for entry in result["tables"].values())
    assert row_counts(store) == before
    assert run(store, "audit.list")["entries"] == []


def test_purge_removes_each_site_past_its_tiers(seeded: tuple[Store, dict[str, str]],
                                                 rollups_in_use: Sampler) -> None:
    store, _ = seeded
    planned = run(store, "retention.purge")
    other_before = row_counts(store, OTHER)
    site_before = row_counts(store, SITE)
    result = run(store, "retention.purge", dry_run=False)
    assert result["dry_run"] is False
    assert result["tables"] == planned["tables"]
    site_after = row_counts(store, SITE)
    for table in site_before:
        assert site_after[table] == site_before[table] - result["tables"][table]["rows"], table
    assert row_counts(store, OTHER) == other_before
    # Raw rows only from the last month; rollups from the last two.
    first_event = store.rows("SELECT min(toDate(timestamp)) FROM events WHERE site = {s:String}",
                             {"s": SITE})[0][0]
    assert first_event == day(0)
    rollup_days = store.rows("SELECT DISTINCT toDate(hour) FROM visits_rollup_daily "
                             "WHERE site = {s:String} ORDER BY 1", {"s": SITE})
    assert [row[0] for row in rollup_days] == [day(MIDDLE), day(0), day(1)]
    drop_days = store.rows("SELECT DISTINCT toDate(hour) FROM drops WHERE site = {s:String} "
                           "ORDER BY 1", {"s": SITE})
    assert [row[0] for row in drop_days] == [day(MIDDLE), day(0)]
    # The month holding only expired rows went whole; the others were rewritten.
    for table, entry in result["tables"].items():
        assert month_of(OLD) in entry["partitions_dropped"], table
    assert month_of(OLD) not in {row[0] for row in store.rows(
        "SELECT DISTINCT partition_id FROM system.parts WHERE database = currentDatabase() "
        "AND active")}
    assert result["tables"]["events"]["partitions_rewritten"] == [month_of(MIDDLE)]
    assert reports_disagree(store, SITE, day(0), day(1), rollups_in_use) == []
    # Nothing more to do the second time.
    assert run(store, "retention.purge")["rows"] == 0


def test_purged_rows_leave_the_data_directory(seeded: tuple[Store, dict[str, str]],
                                              engine_dir: Path) -> None:
    store, tokens = seeded
    paths = dict(store.rows("SELECT name, data_paths[1] FROM system.tables "
                            "WHERE database = currentDatabase() AND notEmpty(data_paths) "
                            "AND engine != 'MaterializedView'"))

    def tables_holding(value: str) -> set[str]:
        found = [str(engine_dir.resolve() / name) for name in files_holding(engine_dir, value)]
        return {table for table, path in paths.items()
                if any(name.startswith(str(Path(path).resolve())) for name in found)}

    # The search sees what is stored: the raw rows and their rollups hold both pages.
    pages = {"events", "visits", "visits_rollup_daily", "events_rollup_daily"}
    assert tables_holding(tokens["old"]) == tables_holding(tokens["middle"]) == pages
    run(store, "retention.purge", dry_run=False)
    assert files_holding(engine_dir, tokens["old"]) == []
    # The middle day's page survives in its rollups only, as its tier says.
    assert tables_holding(tokens["middle"]) == {"visits_rollup_daily", "events_rollup_daily"}


def test_purge_writes_one_audit_row(seeded: tuple[Store, dict[str, str]]) -> None:
    store, _ = seeded
    result = run(store, "retention.purge", dry_run=False)
    (entry,) = run(store, "audit.list")["entries"]
    assert entry["command"] == "purge"
    assert entry["scope"]["sites"] == {SITE: {"raw_months": 1, "rollup_months": 2}}
    assert entry["scope"]["default"] == {"raw_months": 13, "rollup_months": 25}
    assert entry["tables"] == {table: {"rows": values["rows"], "bytes": values["bytes"]}
                               for table, values in result["tables"].items()}
    assert entry["rows"] == result["rows"] > 0


def test_a_site_keeps_its_rows_less_long_than_the_settings_never_longer(
        engine_url: str) -> None:
    store = own_store(engine_url, "retention_set")
    for params, field in (({"raw_months": 14}, "raw_months"),
                          ({"raw_months": 0}, "raw_months"),
                          ({"raw_months": True}, "raw_months"),
                          ({"rollup_months": 26}, "rollup_months"),
                          ({"rollup_months": 12}, "rollup_months"),  # below raw (13)
                          ({"raw_months": 6, "rollup_months": 3}, "rollup_months"),
                          ({}, "raw_months")):
        with pytest.raises(InvalidField) as raised:
            run(store, "retention.set", site=SITE, **params)
        assert raised.value.field == field, params
    shown = run(store, "retention.set", site=SITE, raw_months=6, rollup_months=12)
    today = datetime.now(UTC).date()
    assert shown == {"site": SITE, "raw_months": 6, "rollup_months": 12, "own": True,
                     "raw_since": months_before(today, 6).isoformat(),
                     "rollups_since": months_before(today, 12).isoformat()}
    # A tier not given keeps its value.
    assert run(store, "retention.set", site=SITE, raw_months=3)["rollup_months"] == 12
    # Lower settings hold the site too: they are the TTL.
    lower = Settings.from_env({"COLLECTOR_RETENTION_MONTHS": "2",
                               "COLLECTOR_ROLLUP_RETENTION_MONTHS": "0"})
    (entry,) = run(store, "retention.show", lower, site=SITE)["sites"]
    assert (entry["raw_months"], entry["rollup_months"]) == (2, 12)
    reset = run(store, "retention.set", site=SITE, reset=True)
    assert (reset["raw_months"], reset["rollup_months"], reset["own"]) == (13, 25, False)
    assert reset["rollups_since"] == months_before(today, 25).isoformat()
    forever = run(store, "retention.show", lower, site=SITE)["sites"][0]
    assert forever["rollup_months"] == 0 and forever["rollups_since"] is None


def test_only_known_sites_get_tiers_once_an_allow_list_exists(engine_url: str) -> None:
    store = own_store(engine_url, "retention_known")
    run(store, "retention.set", site="Dev.Example", raw_months=2)  # dev mode: any site
    add_site(store, "allowed.test")
    with pytest.raises(InvalidField, match="unknown site 'nosuch.test'") as raised:
        run(store, "retention.set", site="nosuch.test", raw_months=2)
    assert raised.value.field == "site"
    run(store, "retention.set", site="allowed.test", raw_months=2)
    shown = run(store, "retention.show")
    assert [entry["site"] for entry in shown["sites"]] == ["allowed.test", "dev.example"]
    assert (shown["raw_months"], shown["rollup_months"]) == (13, 25)


@pytest.mark.parametrize("moment, months", [
    (date(2024, 3, 31), 1), (date(2025, 3, 31), 1), (date(2025, 1, 15), 1),
    (date(2025, 12, 31), 10), (date(2025, 5, 31), 25), (date(2025, 2, 28), 12)])
def test_months_are_counted_as_clickhouse_counts_them(store: Store, moment: date,
                                                      months: int) -> None:
    expected = store.rows("SELECT subtractMonths({d:Date}, {m:UInt16})",
                          {"d": moment, "m": months})[0][0]
    assert months_before(moment, months) == expected


def test_serve_purges_once_a_day(seeded: tuple[Store, dict[str, str]],
                                 caplog: pytest.LogCaptureFixture) -> None:
    store, _ = seeded
    now = [datetime.now(UTC).timestamp()]
    duty = DailyPurge(store, Settings.from_env({}), clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="collector"):
        first = duty.run()
    assert first is not None and first["rows"] > 0 and first["trigger"] == "daily"
    assert "daily purge: removed" in caplog.text and "events 3" in caplog.text
    now[0] += 23 * 3600
    assert duty.run() is None  # the audit says a purge ran less than a day ago
    now[0] += 2 * 3600
    assert duty.run() is not None
    purges = run(store, "audit.list", command="purge")["entries"]
    assert [entry["scope"]["trigger"] for entry in purges] == ["daily", "daily"]
    between = datetime.fromisoformat(purges[0]["at"]) - datetime.fromisoformat(purges[1]["at"])
    assert abs(between - timedelta(hours=25)) < timedelta(seconds=1)


def test_the_retention_and_purge_commands(cli_env: dict[str, str], engine_url: str) -> None:
    assert parsed(invoke(cli_env, "retention", "show", "--json"))["sites"] == []
    cli_store = open_store(engine_url, CLI_DATABASE)
    store_events(cli_store, [make_event(at("10:00"), 1, "/"),
                             make_event(at("10:00", OLD), 2, "/old")])
    set_result = invoke(cli_env, "retention", "set", SITE, "--raw-months", "1")
    assert set_result.stdout.startswith(f"{SITE}: raw rows 1 month (since ")
    assert "`collector purge` applies it now" in set_result.stderr
    table = invoke(cli_env, "retention", "show").stdout.splitlines()
    assert table[0] == "settings: raw rows 13 months, rollups 25 months"
    assert table[1].split() == ["site", "raw", "rollups", "own", "raw", "since", "rollups",
                                "since"]
    assert table[2].split()[:6] == [SITE, "1", "month", "25", "months", "yes"]
    assert_fails_in_one_line(invoke(cli_env, "retention", "set", SITE, "--raw-months", "14"),
                             "raw_months must be a whole number from 1 to 13")
    dry = invoke(cli_env, "purge")
    assert dry.stdout.splitlines()[0].startswith("would remove ")
    assert dry.stdout.endswith("repeat with --yes to remove it\n")
    counted = parsed(invoke(cli_env, "purge", "--json"))
    assert counted["dry_run"] is True and counted["tables"]["events"]["rows"] == 1
    applied = parsed(invoke(cli_env, "purge", "--yes", "--json"))
    assert applied["dry_run"] is False and applied["tables"] == counted["tables"]
    assert cli_store.rows("SELECT pathname FROM events") == [("/",)]
    assert parsed(invoke(cli_env, "purge", "--json"))["rows"] == 0

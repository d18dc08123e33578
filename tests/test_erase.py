"""Erasure: a site's events and visits by dates, page pattern or prop, off the disk, with
the rollups rolled up again so that they equal the raw tables."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from collector.errors import InvalidField
from collector.reports.sampling import Sampler
from collector.storage import Store, open_store
from tests import test_cli
from tests.removal_support import (
    files_holding,
    own_store,
    reports_disagree,
    row_counts,
    run,
    token,
)
from tests.reporting_data import (
    GOOGLE,
    SITE,
    at,
    day,
    make_event,
    sample_site_events,
    store_events,
)
from tests.test_cli import CLI_DATABASE, assert_fails_in_one_line, invoke, parsed
from tests.test_cli_serving import COLLECTOR
from tests.test_cli_serving import run as run_script
from tests.test_drops import store_drops
from tests.test_serve import free_port, send_pageview, serving

OTHER = "other.test"
cli_env = test_cli.cli_env  # the command tests' fixture: an empty `collector` database
Seeded = tuple[Store, dict[str, str]]


@pytest.fixture
def seeded(engine_url: str) -> Seeded:
    """The report tests' traffic, and visits that touched private pages or props."""
    store = own_store(engine_url, "erase")
    tokens = {name: token() for name in ("inner", "entry", "email", "other")}
    store_events(store, [
        *sample_site_events(),
        # A private page inside a visit: its entry and exit pages are public.
        make_event(at("15:00"), 40, "/", referrer=GOOGLE),
        make_event(at("15:01"), 40, f"/private/{tokens['inner']}"),
        make_event(at("15:02"), 40, "/pricing"),
        # A visit that lands on a private page and leaves.
        make_event(at("16:00", 1), 41, f"/private/{tokens['entry']}"),
        # A prop holding what a site should never have sent.
        make_event(at("17:00"), 42, "/contact"),
        make_event(at("17:01"), 42, "/contact", name="Contact", prop_keys=["email"],
                   prop_values=[tokens["email"]]),
        # Another site with the same kinds of pages: not erased.
        make_event(at("15:00"), 50, f"/private/{tokens['other']}", site=OTHER),
        make_event(at("15:00", 1), 51, "/contact", name="Contact", site=OTHER,
                   prop_keys=["email"], prop_values=[tokens["email"]]),
    ])
    # Drop counts hold no page nor prop: only erasing the whole site removes them.
    store_drops(store, [(SITE, at("15:00"), "bot"), (SITE, at("16:00", 1), "opt-out"),
                        (OTHER, at("15:00"), "bot")])
    return store, tokens


def pages(store: Store, site: str = SITE) -> list[str]:
    return [row[0] for row in store.rows(
        "SELECT DISTINCT pathname FROM events WHERE site = {s:String} ORDER BY 1", {"s": site})]


def visitors_with_visits(store: Store) -> set[int]:
    return {int(row[0]) for row in store.rows(
        "SELECT DISTINCT visitor FROM visits WHERE site = {s:String}", {"s": SITE})}


def test_a_dry_run_is_the_default_and_changes_nothing(seeded: Seeded) -> None:
    store, _ = seeded
    before = row_counts(store)
    result = run(store, "erase.matching", site=SITE, path_like="/private/%")
    assert result["dry_run"] is True
    assert result["tables"]["events"]["rows"] == 2
    assert result["tables"]["visits"]["rows"] == 2  # the two visits, one row each
    assert result["days_rebuilt"] == [day(0).isoformat(), day(1).isoformat()]
    assert result["tables"]["visits_rollup_daily"]["rows"] > 0
    assert all(entry["bytes"] > 0 for entry in result["tables"].values())
    assert row_counts(store) == before
    assert run(store, "erase.site", site=SITE)["dry_run"] is True
    assert row_counts(store) == before
    assert run(store, "audit.list")["entries"] == []


def test_erasing_a_page_pattern(seeded: Seeded, engine_dir: Path,
                                rollups_in_use: Sampler) -> None:
    store, tokens = seeded
    for name in ("inner", "entry", "other"):
        assert files_holding(engine_dir, tokens[name]), name  # the search sees them
    before = row_counts(store)
    result = run(store, "erase.matching", site=SITE, path_like="/private/%", yes=True)
    assert [page for page in pages(store) if page.startswith("/private/")] == []
    assert pages(store, OTHER) == ["/contact", f"/private/{tokens['other']}"]
    # Both visits went whole; the public pages of the first stay as events.
    assert visitors_with_visits(store) == {1, 2, 3, 4, 5, 6, 42}
    assert store.rows("SELECT pathname FROM events WHERE visitor = 40 ORDER BY timestamp") == [
        ("/",), ("/pricing",)]
    after = row_counts(store)
    for table in ("events", "visits"):
        assert after[table] == before[table] - result["tables"][table]["rows"], table
    assert after["drops"] == before["drops"] == 3 and "drops" not in result["tables"]
    assert all(entry["rows_rebuilt"] > 0 for name, entry in result["tables"].items()
               if "rollup" in name)
    assert reports_disagree(store, SITE, day(0), day(1), rollups_in_use) == []
    assert files_holding(engine_dir, tokens["inner"]) == []
    assert files_holding(engine_dir, tokens["entry"]) == []
    assert files_holding(engine_dir, tokens["other"])
    (entry,) = run(store, "audit.list")["entries"]
    assert entry["command"] == "erase"
    assert entry["scope"] == {"site": SITE, "from": None, "to": None,
                              "path_like": "/private/%", "prop": None}
    assert entry["tables"]["events"] == {"rows": 2,
                                         "bytes": result["tables"]["events"]["bytes"]}


def test_erasing_a_prop_value(seeded: Seeded, engine_dir: Path,
                              rollups_in_use: Sampler) -> None:
    store, tokens = seeded
    assert files_holding(engine_dir, tokens["email"])
    result = run(store, "erase.matching", site=SITE, prop=f"email={tokens['email']}",
                 yes=True)
    assert result["tables"]["events"]["rows"] == 1
    assert store.rows("SELECT count() FROM events WHERE site = {s:String} AND has(prop_values, "
                      "{v:String})", {"s": SITE, "v": tokens["email"]}) == [(0,)]
    assert 42 not in visitors_with_visits(store)
    # Other props and the other site's rows stay.
    assert store.rows("SELECT count() FROM events WHERE has(prop_values, 'pro')") == [(1,)]
    assert store.rows("SELECT count() FROM events WHERE site = {s:String} AND "
                      "has(prop_values, {v:String})", {"s": OTHER, "v": tokens["email"]}) \
        == [(1,)]
    assert reports_disagree(store, SITE, day(0), day(1), rollups_in_use) == []
    # Neither the mutation's text nor the audit holds the value: only its SHA-256 does.
    run(store, "erase.matching", site=OTHER, prop=f"email={tokens['email']}", yes=True)
    assert files_holding(engine_dir, tokens["email"]) == []
    scopes = [entry["scope"]["prop"] for entry in run(store, "audit.list")["entries"]]
    assert len(scopes) == 2 and all(scope.startswith("email=sha256:") for scope in scopes)


def test_erasing_a_date_range(seeded: Seeded, rollups_in_use: Sampler) -> None:
    store, _ = seeded
    day_one = day(1).isoformat()
    result = run(store, "erase.matching", site=SITE, from_date=day_one, to_date=day_one,
                 yes=True)
    assert result["days_rebuilt"] == [day_one]
    days = store.rows("SELECT DISTINCT toDate(timestamp) FROM events WHERE site = {s:String}",
                      {"s": SITE})
    assert days == [(day(0),)]
    assert visitors_with_visits(store) == {1, 2, 3, 4, 40, 42}
    assert store.rows("SELECT count() FROM events WHERE site = {s:String} AND "
                      "toDate(timestamp) = {d:Date}", {"s": OTHER, "d": day(1)}) == [(1,)]
    assert store.rows("SELECT count() FROM visits_rollup_daily WHERE site = {s:String} AND "
                      "toDate(hour) = {d:Date}", {"s": SITE, "d": day(1)}) == [(0,)]
    assert reports_disagree(store, SITE, day(0), day(1), rollups_in_use) == []


def test_days_only_the_rollups_still_hold_lose_their_matching_rows(
        engine_url: str, engine_dir: Path) -> None:
    """Raw rows past the site's raw tier are gone; an erase still reaches their rollups."""
    store = own_store(engine_url, "erase_rollups")
    secret = token()
    store_events(store, [make_event(at("10:00", -80), 60, f"/private/{secret}"),
                         make_event(at("10:01", -80), 60, "/pricing"),
                         make_event(at("10:00"), 61, "/pricing")])
    run(store, "retention.set", site=SITE, raw_months=1)
    run(store, "retention.purge", dry_run=False)
    assert store.rows("SELECT count() FROM events WHERE toDate(timestamp) = {d:Date}",
                      {"d": day(-80)}) == [(0,)]
    assert files_holding(engine_dir, secret)  # in the rollups of that day
    result = run(store, "erase.matching", site=SITE, path_like="/private/%", yes=True)
    assert result["days_rebuilt"] == []
    assert result["tables"]["events_rollup_daily"]["rows"] == 1
    assert result["tables"]["visits_rollup_daily"]["rows"] == 1  # the entry-page row
    assert files_holding(engine_dir, secret) == []
    # The day's other pages stay in its rollups.
    assert store.rows("SELECT pathname FROM events_rollup_daily WHERE toDate(hour) = {d:Date}",
                      {"d": day(-80)}) == [("/pricing",)]


def test_erasing_a_whole_site(seeded: Seeded, engine_dir: Path) -> None:
    store, tokens = seeded
    run(store, "retention.set", site=SITE, raw_months=3)
    other_before, site_before = row_counts(store, OTHER), row_counts(store, SITE)
    result = run(store, "erase.site", site=SITE, yes=True)
    assert result["days_rebuilt"] == []
    assert set(row_counts(store, SITE).values()) == {0}
    assert row_counts(store, OTHER) == other_before
    assert {table: entry["rows"] for table, entry in result["tables"].items()} == site_before
    assert site_before["drops"] == 2  # its drop counts went too
    assert files_holding(engine_dir, tokens["inner"]) == []
    assert files_holding(engine_dir, tokens["other"])
    (shown,) = run(store, "retention.show", site=SITE)["sites"]
    assert shown["own"] is False  # its own retention went with it
    (entry,) = run(store, "audit.list", site=SITE)["entries"]
    assert entry["command"] == "erase site" and entry["tables"]["events"]["rows"] > 0


@pytest.mark.parametrize("params, field", [
    ({"from_date": "2024-13-01"}, "from_date"),
    ({"to_date": "yesterday"}, "to_date"),
    ({"from_date": "2024-03-02", "to_date": "2024-03-01"}, "from_date"),
    ({"prop": "email"}, "prop"),
    ({"prop": "=someone"}, "prop"),
    ({"path_like": ""}, "path_like"),
    ({"site": "not a domain"}, "site"),
])
def test_a_malformed_scope_names_its_parameter(store: Store, params: dict[str, str],
                                               field: str) -> None:
    with pytest.raises(InvalidField) as raised:
        run(store, "erase.matching", **{"site": SITE, **params})
    assert raised.value.field == field


def test_the_erase_command(cli_env: dict[str, str], engine_url: str) -> None:
    secret = token()
    invoke(cli_env, "migrate")
    cli_store = open_store(engine_url, CLI_DATABASE)
    store_events(cli_store, [make_event(at("10:00"), 1, "/"),
                             make_event(at("10:01"), 1, f"/private/{secret}")])
    dry = invoke(cli_env, "erase", "--site", SITE, "--path-like", "/private/%")
    lines = dry.stdout.splitlines()
    assert lines[0].startswith("would remove ") and lines[-1].startswith("dry run: nothing")
    assert lines[1].split() == ["table", "rows", "bytes", "partitions", "dropped",
                                "partitions", "rewritten"]
    assert f"days would be rolled up again: {day(0).isoformat()}" in lines
    erased = parsed(invoke(cli_env, "erase", "--site", SITE, "--path-like", "/private/%",
                           "--yes", "--json"))
    assert erased["dry_run"] is False and erased["tables"]["events"]["rows"] == 1
    assert cli_store.rows("SELECT pathname FROM events") == [("/",)]
    assert_fails_in_one_line(invoke(cli_env, "erase", "--site", SITE, "--prop", "plan"),
                             "prop 'plan' is not KEY=VALUE")


def test_removing_a_site_with_erase(cli_env: dict[str, str], engine_url: str) -> None:
    invoke(cli_env, "migrate")
    for domain in (SITE, "other.example"):
        invoke(cli_env, "sites", "add", domain)
    cli_store = open_store(engine_url, CLI_DATABASE)
    store_events(cli_store, [make_event(at("10:00"), 1, "/"),
                             make_event(at("10:01"), 1, "/pricing")])
    dry = parsed(invoke(cli_env, "sites", "remove", SITE, "--erase", "--json"))
    assert dry["dry_run"] is True and dry["tables"]["events"]["rows"] == 2
    assert cli_store.rows("SELECT count() FROM events")[0][0] == 2  # nothing changed
    assert SITE in invoke(cli_env, "sites", "list").stdout
    done = parsed(invoke(cli_env, "sites", "remove", SITE, "--erase", "--yes", "--json"))
    assert done["domain"] == SITE and done["erased"]["dry_run"] is False
    assert cli_store.rows("SELECT count() FROM events")[0][0] == 0
    assert cli_store.rows("SELECT count() FROM visits_rollup_daily")[0][0] == 0
    assert SITE not in invoke(cli_env, "sites", "list").stdout
    # The last site is refused without --force, and then nothing is erased either.
    store_events(cli_store, [make_event(at("11:00"), 2, "/", site="other.example")])
    assert_fails_in_one_line(invoke(cli_env, "sites", "remove", "other.example", "--erase",
                                    "--yes"), "--force")
    assert cli_store.rows("SELECT count() FROM events")[0][0] == 1


def test_purge_erase_and_audit_through_the_running_server(tmp_path: Path) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    secret = token()
    with serving(data_dir, port, log):
        assert send_pageview(port, f"/private/{secret}") == 202
        assert send_pageview(port, "/public") == 202
        erase = f"{COLLECTOR} erase --site serve.test --path-like '/private/%' --json"
        for _ in range(100):  # until the server's writer has flushed both
            counted = json.loads(run_script(data_dir, port, erase).stdout)
            if counted["tables"]["events"]["rows"]:
                break
            time.sleep(0.1)
        assert counted["dry_run"] is True and counted["tables"]["events"]["rows"] == 1
        assert files_holding(data_dir, secret)
        erased = json.loads(run_script(data_dir, port, f"{erase} --yes").stdout)
        assert erased["dry_run"] is False and erased["tables"]["events"]["rows"] == 1
        assert files_holding(data_dir, secret) == []
        set_tiers = run_script(data_dir, port,
                               f"{COLLECTOR} retention set serve.test --raw-months 2 --json")
        assert json.loads(set_tiers.stdout)["raw_months"] == 2, set_tiers.stderr
        shown = json.loads(run_script(data_dir, port, f"{COLLECTOR} retention show --json"
                                      ).stdout)
        assert [(site["site"], site["own"]) for site in shown["sites"]] == [("serve.test", True)]
        purged = json.loads(run_script(data_dir, port, f"{COLLECTOR} purge --yes --json").stdout)
        assert purged["dry_run"] is False and purged["rows"] == 0
        audit = json.loads(run_script(data_dir, port, f"{COLLECTOR} audit --json").stdout)
        assert [entry["command"] for entry in audit["entries"]] == ["purge", "erase"]
        refused = run_script(data_dir, port, f"{COLLECTOR} erase --site serve.test "
                                             "--from 2024-13-01")
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr == "collector: from_date '2024-13-01' is not a date (YYYY-MM-DD)\n"
        assert send_pageview(port, "/after") == 202  # the server kept serving

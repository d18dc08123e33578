"""The audit: a row for every applied purge and erase, none for dry runs, kept for good."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from collector.errors import InvalidField
from collector.operations.audit import record_removal
from collector.storage import Store, open_store
from tests import test_cli
from tests.removal_support import own_store, run
from tests.reporting_data import SITE, at, make_event, store_events
from tests.test_cli import CLI_DATABASE, invoke, parsed

OTHER = "other.test"
cli_env = test_cli.cli_env  # the command tests' fixture: an empty `collector` database


@pytest.fixture
def audited(engine_url: str) -> Store:
    store = own_store(engine_url, "audit")
    store_events(store, [make_event(at("10:00"), 1, "/a"), make_event(at("10:00", -80), 2, "/b"),
                         make_event(at("11:00"), 3, "/c", site=OTHER)])
    return store


def test_applied_removals_are_listed_newest_first_and_dry_runs_not(audited: Store) -> None:
    run(audited, "retention.purge")
    run(audited, "erase.matching", site=SITE, path_like="/a")
    run(audited, "erase.site", site=OTHER)
    assert run(audited, "audit.list")["entries"] == []
    run(audited, "retention.set", site=SITE, raw_months=1)
    purged = run(audited, "retention.purge", dry_run=False)
    erased = run(audited, "erase.matching", site=SITE, path_like="/a", yes=True)
    run(audited, "erase.site", site=OTHER, yes=True)
    entries = run(audited, "audit.list")["entries"]
    assert [entry["command"] for entry in entries] == ["erase site", "erase", "purge"]
    assert [entry["at"] for entry in entries] == sorted(
        (entry["at"] for entry in entries), reverse=True)
    assert entries[2]["tables"]["events"] == {"rows": 1,
                                              "bytes": purged["tables"]["events"]["bytes"]}
    assert entries[1]["rows"] == erased["rows"] and entries[1]["bytes"] == erased["bytes"]
    assert set(entries[1]["tables"]) == {"events", "visits", "visits_rollup",
                                         "visits_rollup_daily", "events_rollup_daily"}
    assert datetime.fromisoformat(entries[0]["at"]) > datetime.now(UTC) - timedelta(minutes=1)
    # Narrowed by command, by the site of the scope, and in number.
    assert [e["command"] for e in run(audited, "audit.list", command="erase")["entries"]] == [
        "erase"]
    assert [e["command"] for e in run(audited, "audit.list", site=OTHER)["entries"]] == [
        "erase site"]
    assert len(run(audited, "audit.list", limit=2)["entries"]) == 2
    assert len(run(audited, "audit.list", limit=0)["entries"]) == 3
    with pytest.raises(InvalidField) as raised:
        run(audited, "audit.list", limit=-1)
    assert raised.value.field == "limit"


def test_the_audit_outlives_the_data_it_describes(audited: Store) -> None:
    long_ago = datetime.now(UTC) - timedelta(days=5 * 365)
    record_removal(audited, "erase", {"site": SITE}, {"events": {"rows": 7, "bytes": 70}},
                   at=long_ago)
    run(audited, "retention.set", site=SITE, raw_months=1, rollup_months=1)
    run(audited, "retention.purge", dry_run=False)
    run(audited, "erase.site", site=SITE, yes=True)
    entries = run(audited, "audit.list", site=SITE)["entries"]
    assert [entry["command"] for entry in entries] == ["erase site", "erase"]
    assert entries[-1]["tables"] == {"events": {"rows": 7, "bytes": 70}}
    assert datetime.fromisoformat(entries[-1]["at"]) < long_ago + timedelta(seconds=1)
    # No TTL holds it, whatever the retention settings.
    ddl = audited.rows("SELECT create_table_query FROM system.tables WHERE database = "
                       "currentDatabase() AND name = 'audit'")[0][0]
    assert " TTL " not in ddl
    assert len(run(audited, "audit.list", command="purge")["entries"]) == 1


def test_the_audit_command(cli_env: dict[str, str], engine_url: str) -> None:
    assert invoke(cli_env, "audit").stdout == "no purge or erasure recorded\n"
    cli_store = open_store(engine_url, CLI_DATABASE)
    store_events(cli_store, [make_event(at("10:00"), 1, "/a"), make_event(at("10:00"), 2, "/b")])
    invoke(cli_env, "erase", "--site", SITE, "--path-like", "/a", "--yes")
    invoke(cli_env, "purge", "--yes")
    header, *rows = invoke(cli_env, "audit").stdout.splitlines()
    assert header.split() == ["at", "command", "scope", "rows", "bytes"]
    assert [row.split()[1] for row in rows] == ["purge", "erase"]
    assert f"path_like=/a site={SITE}" in rows[1]
    listed = parsed(invoke(cli_env, "audit", "--json", "--command", "erase"))
    assert [entry["scope"]["path_like"] for entry in listed["entries"]] == ["/a"]
    assert len(parsed(invoke(cli_env, "audit", "--json", "--limit", "1"))["entries"]) == 1

"""The command line through click's runner, on the session's engine.

Every command runs its operation on the embedded engine the session already
holds (``COLLECTOR_CLICKHOUSE_URL`` set to it), in the ``collector`` database that
a store URL without a database opens; each test starts from an empty one. Real
processes of ``python -m collector`` are in ``test_cli_process.py``.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from collector.cli import cli
from collector.cli.output import emit, json_option, progress_reporter, run
from collector.errors import NotFound
from collector.operations import OperationContext, operation
from collector.reports.auth import check_token
from collector.storage import Store, open_store
from collector.storage.migrations import available_migrations

CLI_DATABASE = "collector"  # what a chdb:// store URL opens


@pytest.fixture
def cli_env(store: Store, engine_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Variables pointing the CLI at the session engine, with an empty database."""
    store.command(f"DROP DATABASE IF EXISTS {CLI_DATABASE}")
    handlers = logging.getLogger().handlers[:]
    # warning: the first command's migration log lines would precede its output on stderr.
    yield {"COLLECTOR_CLICKHOUSE_URL": engine_url, "COLLECTOR_DATA_DIR": str(tmp_path),
           "COLLECTOR_LOG_LEVEL": "warning"}
    # Each command points logging at its stderr, which the runner closes afterwards.
    logging.getLogger().handlers[:] = handlers
    store.command(f"DROP DATABASE IF EXISTS {CLI_DATABASE}")


@pytest.fixture
def cli_store(cli_env: dict[str, str], engine_url: str) -> Store:
    """The database the CLI writes, to check what it did."""
    return open_store(engine_url, CLI_DATABASE)


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def parsed(result: Result) -> Any:
    assert result.exit_code == 0, (result.stdout, result.stderr)
    return json.loads(result.stdout)


def assert_fails_in_one_line(result: Result, *expected: str, code: int = 1) -> None:
    """Exit ``code``, nothing on stdout, one line on stderr carrying each ``expected``."""
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.startswith("collector: ") and result.stderr.count("\n") == 1, \
        result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr


def every_command(command: click.Command, path: tuple[str, ...] = ()
                  ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name, child in command.commands.items():
            yield from every_command(child, (*path, name))


def test_every_command_and_option_is_documented_with_its_default() -> None:
    commands = list(every_command(cli))
    assert len(commands) > 20
    for path, command in commands:
        assert command.help and command.help.strip(), path
        # The short help in the parent's listing is a whole sentence, not cut with "...".
        assert not command.get_short_help_str(limit=60).endswith("..."), path
        for parameter in command.params:
            if not isinstance(parameter, click.Option) or parameter.name == "help":
                continue
            assert parameter.help, (path, parameter.name)
            # to_info_dict: the default as click shows it (None when there is none).
            if parameter.to_info_dict()["default"] not in (None, False, ()):
                assert parameter.show_default, (path, parameter.name)
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0 and "Usage: " in result.stdout, path


def test_version_debug_and_a_bare_collector() -> None:
    version = CliRunner().invoke(cli, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("collector 0.")
    bare = CliRunner().invoke(cli, [])
    assert bare.exit_code == 0
    assert "Usage: collector" in bare.stdout and "sites" in bare.stdout


@pytest.mark.parametrize("args", [
    ["nosuch"],
    ["keys", "create"],  # --site is required
    ["goals", "add", "--site", "example.com"],  # neither --page nor --event
    ["goals", "add", "--site", "example.com", "--page", "/a", "--event", "A"],
    ["demo", "--events", "0"],
    ["keys", "threshold", "--site", "example.com", "--k", "0"],
])
def test_usage_mistakes_exit_2_before_touching_the_store(args: list[str], tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, args, env={"COLLECTOR_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "Usage: collector" in result.stderr, result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "clickhouse").exists()


def test_sites_are_normalised_listed_as_a_table_and_as_json(cli_env: dict[str, str]) -> None:
    assert invoke(cli_env, "sites", "list").stdout == \
        "no sites: every domain is accepted (dev mode)\n"
    added = invoke(cli_env, "sites", "add", "https://Shop.Example.com/")
    assert added.exit_code == 0 and added.stdout == "added shop.example.com (timezone UTC)\n"
    berlin = parsed(invoke(cli_env, "sites", "add", "Example.COM", "--timezone",
                           "Europe/Berlin", "--json"))
    assert berlin == {"domain": "example.com", "timezone": "Europe/Berlin",
                      "exclude_ips": [], "exclude_paths": []}
    assert_fails_in_one_line(invoke(cli_env, "sites", "add", "bad domain!"),
                             "'bad domain!' is not a domain name")
    assert_fails_in_one_line(invoke(cli_env, "sites", "add", "tz.example", "--timezone",
                                    "Mars/Olympus"), "unknown timezone 'Mars/Olympus'")
    table = invoke({**cli_env, "COLLECTOR_SITES": "env.example"}, "sites", "list").stdout
    header, *rows = table.splitlines()
    assert header.split() == ["domain", "timezone", "excluded", "IPs", "excluded", "paths",
                              "source"]
    assert [row.split() for row in rows] == [
        ["example.com", "Europe/Berlin", "-", "-", "stored"],
        ["shop.example.com", "UTC", "-", "-", "stored"],
        ["env.example", "UTC", "-", "-", "COLLECTOR_SITES"]]
    listed = parsed(invoke(cli_env, "sites", "list", "--json"))
    assert listed["open_to_all"] is False
    assert [site["domain"] for site in listed["sites"]] == ["example.com", "shop.example.com"]
    assert set(listed["sites"][0]) == {"domain", "timezone", "exclude_ips", "exclude_paths",
                                       "source"}


def test_exclusions_are_added_and_removed_never_wiped(cli_env: dict[str, str]) -> None:
    invoke(cli_env, "sites", "add", "example.com")

    def exclude(*options: str) -> Result:
        return invoke(cli_env, "sites", "exclude", "example.com", *options)

    assert exclude("--path", "/admin/*").exit_code == 0
    kept = exclude("--ip", "10.0.0.0/8")
    assert kept.stdout == ("example.com: excluding 1 IP range(s) (10.0.0.0/8), "
                           "1 path pattern(s) (/admin/*)\n")
    both = parsed(exclude("--ip", "192.0.2.7/24", "--path", "/private/**", "--ip",
                          "10.0.0.0/8", "--json"))
    assert both["exclude_ips"] == ["10.0.0.0/8", "192.0.2.0/24"]
    assert both["exclude_paths"] == ["/admin/*", "/private/**"]
    assert_fails_in_one_line(exclude("--remove-ip", "10.1.0.0/16"),
                             "example.com does not exclude 10.1.0.0/16")
    assert_fails_in_one_line(exclude("--ip", "not-a-cidr"), "'not-a-cidr' is not a CIDR range")
    fewer = parsed(exclude("--remove-ip", "10.0.0.0/8", "--remove-path", "/admin/*", "--json"))
    assert (fewer["exclude_ips"], fewer["exclude_paths"]) == (["192.0.2.0/24"], ["/private/**"])
    assert parsed(exclude("--json")) == fewer  # no option: shown, unchanged
    cleared = parsed(exclude("--clear", "--path", "/only/*", "--json"))
    assert (cleared["exclude_ips"], cleared["exclude_paths"]) == ([], ["/only/*"])
    assert_fails_in_one_line(invoke(cli_env, "sites", "exclude", "nosuch.example", "--ip",
                                    "10.0.0.0/8"), "unknown site 'nosuch.example'")


def test_the_last_site_is_removed_only_with_force(cli_env: dict[str, str]) -> None:
    invoke(cli_env, "sites", "add", "a.example")
    invoke(cli_env, "sites", "add", "b.example")
    assert invoke(cli_env, "sites", "remove", "a.example").stdout == "removed a.example\n"
    refused = invoke(cli_env, "sites", "remove", "https://B.example/")
    assert_fails_in_one_line(refused, "b.example is the last site", "every domain",
                             "--force")
    # Another allowed site in COLLECTOR_SITES keeps the allow-list: no force needed.
    with_env = parsed(invoke({**cli_env, "COLLECTOR_SITES": "env.example"}, "sites", "remove",
                             "b.example", "--json"))
    assert with_env == {"domain": "b.example", "removed": True, "open_to_all": False}
    invoke(cli_env, "sites", "add", "b.example")
    forced = invoke(cli_env, "sites", "remove", "b.example", "--force")
    assert forced.exit_code == 0
    assert forced.stdout == ("removed b.example\nno sites: every domain is accepted "
                             "(dev mode), until a site is added\n")
    assert_fails_in_one_line(invoke(cli_env, "sites", "remove", "b.example"),
                             "b.example is not a stored site")


def test_keys_for_allowed_sites_only_the_key_last_revoked_once(
        cli_env: dict[str, str], cli_store: Store) -> None:
    dev_mode = parsed(invoke(cli_env, "keys", "create", "--site", "any.example", "--json"))
    assert set(dev_mode) == {"key", "key_id", "site", "kind", "label", "created", "revoked",
                             "embed_origins"}
    invoke(cli_env, "sites", "add", "example.com")
    assert_fails_in_one_line(invoke(cli_env, "keys", "create", "--site", "nosuch.com"),
                             "unknown site 'nosuch.com'", "collector sites add nosuch.com")
    created = invoke(cli_env, "keys", "create", "--site", "Example.com", "--label", "ci [x]")
    assert created.exit_code == 0
    key = created.stdout.splitlines()[-1]
    assert check_token(cli_store, key).site == "example.com"
    share = parsed(invoke(cli_env, "keys", "create", "--site", "example.com", "--share",
                          "--json"))
    assert share["kind"] == "share" and share["key"].startswith("cs_")
    assert check_token(cli_store, share["key"]).kind == "share"

    header, *rows = invoke(cli_env, "keys", "list", "--site", "example.com").stdout.splitlines()
    assert header.split() == ["id", "site", "kind", "created", "(UTC)", "state", "label"]
    assert len(rows) == 2 and rows[0].split()[-3:] == ["active", "ci", "[x]"]
    listed = parsed(invoke(cli_env, "keys", "list", "--json"))["keys"]
    assert [item["site"] for item in listed] == ["any.example", "example.com", "example.com"]
    assert all(item["created"].endswith("Z") and "key" not in item for item in listed)

    key_id = share["key_id"]
    revoked = invoke(cli_env, "keys", "revoke", key_id)
    assert revoked.stdout == f"revoked {key_id} (share token for example.com)\n"
    assert_fails_in_one_line(invoke(cli_env, "keys", "revoke", key_id),
                             f"key {key_id} was already revoked")
    assert_fails_in_one_line(invoke(cli_env, "keys", "revoke", "nosuch"), "no key 'nosuch'")
    states = {item["key_id"]: item["revoked"]
              for item in parsed(invoke(cli_env, "keys", "list", "--json"))["keys"]}
    assert states[key_id] is True and list(states.values()).count(True) == 1


def test_goals_and_thresholds(cli_env: dict[str, str]) -> None:
    invoke(cli_env, "sites", "add", "example.com")
    goal = parsed(invoke(cli_env, "goals", "add", "--site", "example.com", "--page", "/blog/**",
                         "--json"))
    assert goal == {"site": "example.com", "name": "Visit /blog/**", "kind": "page",
                    "pattern": "/blog/**", "currency": ""}
    signup = invoke(cli_env, "goals", "add", "--site", "example.com", "--event", "Signup")
    assert signup.stdout == "example.com: goal 'Signup' (event Signup)\n"
    purchase = invoke(cli_env, "goals", "add", "--site", "example.com", "--event", "Purchase",
                      "--currency", "eur")
    assert purchase.stdout == "example.com: goal 'Purchase' (event Purchase, revenue in EUR)\n"
    assert_fails_in_one_line(invoke(cli_env, "goals", "add", "--site", "example.com", "--page",
                                    "/buy", "--currency", "EUR"), "a revenue goal is a custom")
    assert_fails_in_one_line(invoke(cli_env, "goals", "add", "--site", "nosuch.com", "--event",
                                    "Signup"), "unknown site 'nosuch.com'")
    assert_fails_in_one_line(invoke(cli_env, "goals", "add", "--site", "example.com", "--page",
                                    "blog"), "starting with /")
    header, *rows = invoke(cli_env, "goals", "list", "--site", "example.com").stdout.splitlines()
    assert header.split() == ["name", "kind", "pattern", "currency"]
    assert [row.split()[-1] for row in rows] == ["EUR", "Signup", "/blog/**"]
    assert invoke(cli_env, "goals", "remove", "--site", "example.com", "Signup").exit_code == 0
    assert_fails_in_one_line(invoke(cli_env, "goals", "remove", "--site", "example.com",
                                    "Signup"), "example.com has no goal 'Signup'")
    assert [g["name"] for g in parsed(invoke(cli_env, "goals", "list", "--site", "example.com",
                                             "--json"))["goals"]] == ["Purchase", "Visit /blog/**"]

    shown = invoke(cli_env, "keys", "threshold", "--site", "example.com")
    assert shown.stdout == "example.com: k=1 for API keys, k=5 for share tokens\n"
    assert parsed(invoke(cli_env, "keys", "threshold", "--site", "example.com", "--public-k",
                         "10", "--json")) == {"site": "example.com", "k": 1, "public_k": 10}
    assert_fails_in_one_line(invoke(cli_env, "keys", "threshold", "--site", "nosuch.com",
                                    "--k", "3"), "unknown site 'nosuch.com'")


def test_migrate_salts_settings_and_demo(cli_env: dict[str, str]) -> None:
    migrations = available_migrations()
    first = invoke(cli_env, "migrate")
    assert first.exit_code == 0
    assert first.stdout == (f"applied {len(migrations)} migration(s): "
                            f"{', '.join(name for _, name, _ in migrations)}\n")
    again = parsed(invoke(cli_env, "migrate", "--json"))
    assert again["applied_now"] == [] and again["version"] == migrations[-1][0]
    assert [item["name"] for item in again["migrations"]] == [name for _, name, _ in migrations]
    assert invoke(cli_env, "migrate").stdout == "schema is up to date\n"
    salts = parsed(invoke(cli_env, "salts", "status", "--json"))
    assert salts == {"destroyed_now": [], "days": []}
    assert "no salts stored" in invoke(cli_env, "salts", "status").stdout
    settings = parsed(invoke(cli_env, "settings", "--json"))["settings"]
    assert {"variable": "COLLECTOR_PORT", "default": "8000",
            "help": "Port `collector serve` listens on."} in settings
    assert "| `COLLECTOR_PORT` | `8000` |" in invoke(cli_env, "settings", "--markdown").stdout
    demo = parsed(invoke(cli_env, "demo", "--site", "Demo.Example", "--events", "2000",
                         "--days", "3", "--json"))
    assert set(demo) == {"site", "events", "visits", "days", "seconds", "events_per_second"}
    assert demo["site"] == "demo.example" and 1500 < demo["events"] < 2500
    text = invoke(cli_env, "demo", "--site", "other.example", "--events", "500", "--days", "1")
    assert text.stderr == "" and text.stdout.startswith("other.example: ")


def test_downloads_report_and_fail_in_one_line(cli_env: dict[str, str],
                                               served: tuple[Path, str]) -> None:
    root, base_url = served
    (root / "spammers.txt").write_text("".join(f"seo-{n}.example\n" for n in range(150)))
    updated = parsed(invoke(cli_env, "lists", "update", "--url", f"{base_url}/spammers.txt",
                            "--json"))
    assert updated == {"hosts": 150,
                       "path": str(Path(cli_env["COLLECTOR_DATA_DIR"]) / "referrer-spam.txt")}
    assert_fails_in_one_line(invoke(cli_env, "lists", "update", "--url", f"{base_url}/missing"),
                             "spam list download failed", "HTTP 404")
    assert_fails_in_one_line(invoke(cli_env, "geoip", "update", "--url", "/nonexistent"),
                             "geoip download failed: /nonexistent: No such file")
    assert_fails_in_one_line(invoke(cli_env, "lists", "update", "--url", "/nonexistent"),
                             "spam list download failed: /nonexistent: No such file")
    assert_fails_in_one_line(invoke(cli_env, "lists", "update", "--url",
                                    "gopher://lists.example/spam.txt"),
                             "expected an http(s):// address or a local file")


@pytest.mark.parametrize(("variables", "args", "expected"), [
    ({"COLLECTOR_PORT": "abc"}, ["serve"], ["COLLECTOR_PORT='abc'", "from 1 to 65535"]),
    ({}, ["serve", "--port", "99999"], ["--port='99999'", "from 1 to 65535"]),
    ({"COLLECTOR_RETENTION_MONTHS": "0"}, ["migrate"], ["COLLECTOR_RETENTION_MONTHS='0'"]),
    ({"COLLECTOR_LOG_LEVEL": "loud"}, ["settings"], ["COLLECTOR_LOG_LEVEL='loud'"]),
    ({"COLLECTOR_TRUSTED_PROXIES": "10.0.0.0/33"}, ["sites", "list"], ["CIDR"]),
])
def test_a_bad_setting_stops_a_command_in_one_line(
        tmp_path: Path, variables: dict[str, str], args: list[str], expected: list[str]) -> None:
    result = CliRunner().invoke(cli, args, env={"COLLECTOR_DATA_DIR": str(tmp_path),
                                                **variables})
    assert_fails_in_one_line(result, *expected)
    assert not (tmp_path / "clickhouse").exists()  # refused before opening the store


@operation("test.cli_bug")
def _bug(context: OperationContext) -> None:
    raise RuntimeError("a bug in an operation")


@click.command("crash-for-test")
@click.pass_context
def crash_command(ctx: click.Context) -> None:
    """Run an operation that fails with a bug, not a known error."""
    run(ctx, "test.cli_bug")


def test_a_bug_is_one_line_and_its_traceback_needs_debug(cli_env: dict[str, str]) -> None:
    cli.add_command(crash_command)
    try:
        quiet = invoke(cli_env, "crash-for-test")
        assert_fails_in_one_line(quiet, "unexpected RuntimeError: a bug in an operation",
                                 "--debug")
        loud = invoke(cli_env, "--debug", "crash-for-test")
        assert isinstance(loud.exception, RuntimeError)
        known = invoke(cli_env, "--debug", "sites", "remove", "nosuch.example")
        assert isinstance(known.exception, NotFound)
    finally:
        cli.commands.pop("crash-for-test")


@operation("test.cli_notes")
def _noted(context: OperationContext) -> dict[str, str]:
    context.notes.append("a warning for the operator")
    return {"done": "yes"}


@click.command("notes-for-test")
@json_option
@click.pass_context
def notes_command(ctx: click.Context, as_json: bool) -> None:
    """Run an operation that leaves a note."""
    emit(run(ctx, "test.cli_notes"), as_json, lambda result: click.echo("done"))


def test_notes_go_to_stderr_apart_from_json(cli_env: dict[str, str]) -> None:
    cli.add_command(notes_command)
    try:
        result = invoke(cli_env, "notes-for-test", "--json")
        assert json.loads(result.stdout) == {"done": "yes"}
        assert result.stderr == "collector: a warning for the operator\n"
    finally:
        cli.commands.pop("notes-for-test")


def test_progress_is_drawn_only_on_a_terminal() -> None:
    terminal, piped = io.StringIO(), io.StringIO()
    with progress_reporter(Console(file=terminal, force_terminal=True, width=80)) as progress:
        for done in range(0, 101, 25):
            progress(done, 100, "events")
    with progress_reporter(Console(file=piped, force_terminal=False)) as progress:
        progress(50, 100, "events")
    assert "events" in terminal.getvalue() and "100/100" in terminal.getvalue()
    assert piped.getvalue() == ""

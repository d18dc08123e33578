"""The command line as an operator uses it (in a subprocess with its own data directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import contextlib, io, json, os, sys
from collector.cli import main
outputs = []
for variables, argv in json.loads(sys.argv[1]):
    os.environ.update(variables)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    for name in variables:
        del os.environ[name]
    outputs.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(outputs))
"""


def run_cli(data_dir: Path, *commands: list[str] | tuple[dict[str, str], list[str]]
            ) -> list[tuple[int, str, str]]:
    """Exit code, stdout and stderr of each command, run one after the other in one process;
    a command given as (variables, argv) runs with those variables set."""
    env = {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir)}
    runs = [command if isinstance(command, tuple) else ({}, command) for command in commands]
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(runs)], env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    return [tuple(item) for item in json.loads(result.stdout)]  # type: ignore[misc]


def assert_one_line_error(result: tuple[int, str, str], *expected: str) -> None:
    """Exit code 1 and one line on stderr, no traceback, carrying each ``expected``."""
    code, _, errors = result
    assert code == 1 and errors.startswith("collector: ") and errors.count("\n") == 1, result
    for text in expected:
        assert text in errors, result


def test_sites_salts_migrate_and_settings(tmp_path: Path) -> None:
    results = run_cli(
        tmp_path,
        ["migrate"],
        ["sites", "list"],
        ["sites", "add", "Example.COM", "--timezone", "Europe/Berlin"],
        ["sites", "add", "bad domain!"],
        ["sites", "add", "tz.example", "--timezone", "Mars/Olympus"],
        ["sites", "exclude", "example.com", "--ip", "192.0.2.0/24", "--path", "/admin/*"],
        ["sites", "exclude", "example.com", "--ip", "not-a-cidr"],
        ["sites", "list"],
        ["sites", "remove", "example.com"],
        ["sites", "remove", "example.com"],
        ["salts", "status"],
        ["settings"],
    )
    (migrated, empty, added, bad, bad_tz, excluded, bad_cidr, listed, removed, again, salts,
     settings) = results
    assert migrated[0] == 0 and "applied" in migrated[1]
    assert "dev mode" in empty[1]
    assert added == (0, "added example.com (timezone Europe/Berlin)\n", "")
    assert bad[0] == 1 and "not a domain name" in bad[2]
    assert bad_tz[0] == 1 and "unknown timezone" in bad_tz[2]
    assert excluded[0] == 0 and "1 IP range(s), 1 path pattern(s)" in excluded[1]
    assert bad_cidr[0] == 1 and "not a CIDR range" in bad_cidr[2]
    assert "example.com\tEurope/Berlin\t192.0.2.0/24 /admin/*" in listed[1]
    assert removed[0] == 0 and again[0] == 1
    assert salts[0] == 0 and "no salts stored" in salts[1]
    assert "COLLECTOR_TRUSTED_PROXIES" in settings[1]


def test_a_second_migrate_is_a_no_op(tmp_path: Path) -> None:
    first, second = run_cli(tmp_path, ["migrate"], ["migrate"])
    assert first[0] == 0 and second == (0, "schema is up to date\n", "")


def test_lists_update_downloads_the_spam_list(tmp_path: Path,
                                              served: tuple[Path, str]) -> None:
    root, base_url = served
    (root / "spammers.txt").write_text("".join(f"seo-{n}.example\n" for n in range(150)))
    url = f"{base_url}/spammers.txt"
    (updated, missing) = run_cli(tmp_path, ["lists", "update", "--url", url],
                                 ["lists", "update", "--url", url + ".missing"])
    assert updated[0] == 0 and "150 referrer-spam hosts" in updated[1]
    assert (tmp_path / "referrer-spam.txt").exists()
    assert missing[0] == 1 and missing[2].startswith("collector: ")


def test_a_bad_setting_stops_every_command_with_one_line(tmp_path: Path) -> None:
    results = run_cli(
        tmp_path,
        ({"COLLECTOR_PORT": "abc"}, ["serve"]),
        ["serve", "--port", "99999"],
        ({"COLLECTOR_RETENTION_MONTHS": "0"}, ["migrate"]),
        ({"COLLECTOR_LOG_LEVEL": "loud"}, ["settings"]),
        ({"COLLECTOR_TRUSTED_PROXIES": "10.0.0.0/33"}, ["sites", "list"]),
    )
    port_variable, port_option, retention, log_level, proxies = results
    assert_one_line_error(port_variable, "COLLECTOR_PORT='abc'", "from 1 to 65535")
    assert_one_line_error(port_option, "--port='99999'", "from 1 to 65535")
    assert_one_line_error(retention, "COLLECTOR_RETENTION_MONTHS='0'", "from 1 to 1200")
    assert_one_line_error(log_level, "COLLECTOR_LOG_LEVEL='loud'", "debug, info, warning")
    assert_one_line_error(proxies, "COLLECTOR_TRUSTED_PROXIES='10.0.0.0/33'", "CIDR")
    assert not (tmp_path / "clickhouse").exists()  # refused before opening the store


def test_serve_refuses_a_port_out_of_range_before_binding(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "collector", "serve", "--port", "99999"],
                            env={**os.environ, "COLLECTOR_DATA_DIR": str(tmp_path)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("collector: --port='99999' is invalid: "
                             "expected a whole number from 1 to 65535\n")


def test_updates_from_a_missing_address_fail_in_one_line(tmp_path: Path) -> None:
    geoip, spam_list, unsupported = run_cli(
        tmp_path, ["geoip", "update", "--url", "/nonexistent"],
        ["lists", "update", "--url", "/nonexistent"],
        ["lists", "update", "--url", "gopher://lists.example/spam.txt"])
    assert_one_line_error(geoip, "geoip download failed: /nonexistent: No such file")
    assert_one_line_error(spam_list, "spam list download failed: /nonexistent: No such file")
    assert_one_line_error(unsupported, "expected an http(s):// address or a local file")
    assert list(tmp_path.iterdir()) == []


def test_lists_update_installs_a_local_file(tmp_path: Path) -> None:
    fetched_elsewhere = tmp_path / "spammers.txt"
    fetched_elsewhere.write_text("".join(f"spam{number}.example\n" for number in range(150)))
    data_dir = tmp_path / "data"
    (updated,) = run_cli(data_dir, ["lists", "update", "--url", str(fetched_elsewhere)])
    assert updated[0] == 0 and "150 referrer-spam hosts" in updated[1]
    assert (data_dir / "referrer-spam.txt").read_text() == fetched_elsewhere.read_text()

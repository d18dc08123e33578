"""The command line as an operator uses it (in a subprocess with its own data directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import contextlib, io, json, sys
from collector.cli import main
outputs = []
for argv in json.loads(sys.argv[1]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    outputs.append([code, out.getvalue(), err.getvalue()])
print(json.dumps(outputs))
"""


def run_cli(data_dir: Path, *commands: list[str]) -> list[tuple[int, str, str]]:
    env = {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir)}
    result = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(commands)], env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    return [tuple(item) for item in json.loads(result.stdout)]  # type: ignore[misc]


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

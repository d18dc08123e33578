"""``python -m collector`` as an operator runs it: real processes, their own data directory."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from tests.test_serve import free_port

COLLECTOR = f"{sys.executable} -m collector"


def collector(data_dir: Path, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *args],
                          env={**os.environ, "COLLECTOR_DATA_DIR": str(data_dir), **variables},
                          capture_output=True, text=True, timeout=120)


def shell(data_dir: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script],
                          env={**os.environ, "COLLECTOR_DATA_DIR": str(data_dir),
                               "COLLECTOR_LOG_LEVEL": "warning"},
                          capture_output=True, text=True, timeout=120)


def test_version_help_and_exit_codes(tmp_path: Path) -> None:
    version = collector(tmp_path, "--version")
    assert (version.returncode, version.stdout) == (0, "collector 0.1.0\n")
    bare = collector(tmp_path)
    assert bare.returncode == 0 and bare.stdout.startswith("Usage: collector [OPTIONS]")
    assert bare.stderr == ""
    usage = collector(tmp_path, "sites", "frobnicate")
    assert usage.returncode == 2 and "No such command 'frobnicate'" in usage.stderr
    assert list(tmp_path.iterdir()) == []  # neither help nor a usage mistake opens the store


def test_readme_key_line_and_json_from_a_real_process(tmp_path: Path) -> None:
    created = shell(tmp_path, f"{COLLECTOR} sites add 'https://Example.com/' >/dev/null && "
                              f"KEY=$({COLLECTOR} keys create --site example.com | tail -1) && "
                              'echo "$KEY"')
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("ck_") and len(key.split("_", 2)[2]) >= 40
    listed = collector(tmp_path, "keys", "list", "--json", COLLECTOR_LOG_LEVEL="warning")
    assert [item["key_id"] for item in json.loads(listed.stdout)["keys"]] == \
        [key.split("_")[1]]
    refused = collector(tmp_path, "keys", "create", "--site", "nosuch.com")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == ("collector: unknown site 'nosuch.com'; add it first with "
                              "`collector sites add nosuch.com`\n")


def test_serve_refuses_a_port_out_of_range_before_binding(tmp_path: Path) -> None:
    result = collector(tmp_path, "serve", "--port", "99999")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == ("collector: --port='99999' is invalid: "
                             "expected a whole number from 1 to 65535\n")


def test_serve_on_a_port_in_use_fails_before_saying_listening(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        result = collector(tmp_path, "serve", COLLECTOR_PORT=str(port))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"collector: cannot listen on 127.0.0.1:{port}: the port is in "
                             "use (choose another with --port or COLLECTOR_PORT)\n")

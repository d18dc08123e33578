"""The command line while ``collector serve`` runs on the embedded engine.

The server owns the data directory, so each command goes through its admin
channel; it must work as with the server stopped, and the running server must
see a change at once (no reload interval to wait for).
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.conftest import CHROME_UA
from tests.test_serve import collector_env, free_port, serving

COLLECTOR = f"{sys.executable} -m collector"


def run(data_dir: Path, port: int, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", script], env=collector_env(data_dir, port),
                          capture_output=True, text=True, timeout=120)


def dropped(port: int, domain: str, path: str = "/") -> str | None:
    """Why the server dropped a pageview (its x-collector-dropped header), None if kept."""
    body = json.dumps({"n": "pageview", "u": f"https://{domain}{path}", "d": domain})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/event", data=body.encode(),
                                     headers={"User-Agent": CHROME_UA,
                                              "Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.headers.get("x-collector-dropped")


def query_status(port: int, key: str, site: str) -> int:
    body = json.dumps({"site_id": site, "date_range": "7d", "metrics": ["visitors"]})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/query",
                                     data=body.encode(),
                                     headers={"Authorization": f"Bearer {key}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_every_kind_of_command_works_through_the_running_server(tmp_path: Path) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    with serving(data_dir, port, log):
        assert dropped(port, "other.example") is None  # dev mode: every domain
        added = run(data_dir, port,
                    f"{COLLECTOR} sites add 'https://Shop.Example.com/' --json")
        assert json.loads(added.stdout)["domain"] == "shop.example.com", added.stderr
        assert dropped(port, "other.example") == "unknown-site"  # the server knew at once

        created = run(data_dir, port, f"KEY=$({COLLECTOR} keys create --site shop.example.com "
                                      '| tail -1) && echo "$KEY"')
        key = created.stdout.strip()
        assert created.returncode == 0 and key.startswith("ck_"), created.stderr
        assert query_status(port, key, "shop.example.com") == 200
        refused = run(data_dir, port, f"{COLLECTOR} keys create --site nosuch.com")
        assert refused.returncode == 1 and refused.stdout == ""
        assert refused.stderr == ("collector: unknown site 'nosuch.com'; add it first with "
                                  "`collector sites add nosuch.com`\n")

        excluded = run(data_dir, port, f"{COLLECTOR} sites exclude shop.example.com "
                                       "--path '/admin/*' --ip 10.0.0.0/8 --json")
        assert json.loads(excluded.stdout)["exclude_paths"] == ["/admin/*"], excluded.stderr
        assert dropped(port, "shop.example.com", "/admin/users") == "excluded"
        assert dropped(port, "shop.example.com", "/pricing") is None

        revoked = run(data_dir, port, f"{COLLECTOR} keys revoke {key.split('_')[1]} && "
                                      f"{COLLECTOR} keys revoke {key.split('_')[1]}")
        assert revoked.returncode == 1 and revoked.stderr.endswith("was already revoked\n")
        assert query_status(port, key, "shop.example.com") == 401

        last = run(data_dir, port, f"{COLLECTOR} sites remove shop.example.com")
        assert last.returncode == 1 and "--force" in last.stderr
        assert run(data_dir, port, f"{COLLECTOR} migrate").stdout == "schema is up to date\n"
        salts = json.loads(run(data_dir, port, f"{COLLECTOR} salts status --json").stdout)
        assert salts["days"], salts  # the pageviews above created today's salt
        demo = run(data_dir, port, f"{COLLECTOR} demo --events 1000 --days 2 --json")
        assert json.loads(demo.stdout)["site"] == "demo.example", demo.stderr

"""Proof that no IP address is written anywhere: data directory, write-ahead log, logs, other files.

Events come from distinctive IPv4 and IPv6 addresses, directly and through a
trusted proxy's header; then every file the run touched is searched for each
address as text, as packed bytes (both byte orders) and as an integer.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from collector.app import create_app
from collector.errors import StorageError
from collector.storage import Store
from tests.conftest import CHROME_UA, app_settings

DIRECT = ["192.0.2.147", "2001:db8:5eed:c0ff:ee00:1234:5678:9abc"]
FORWARDED = ["198.51.100.233", "2001:db8:feed:beef:1:2:3:4"]
PROXY_PEER = "203.0.113.9"


def needles(address: str) -> list[bytes]:
    parsed = ipaddress.ip_address(address)
    forms = {str(parsed), parsed.exploded, str(int(parsed))}
    found = [form.encode() for form in forms]
    return found + [parsed.packed, parsed.packed[::-1]]


def files_touched_since(directory: Path, since: float) -> list[Path]:
    return [path for path in directory.rglob("*")
            if path.is_file() and path.stat().st_mtime >= since - 1]


def test_no_address_reaches_disk_or_logs(store: Store, engine_url: str, engine_dir: Path,
                                         tmp_path: Path) -> None:
    started = time.time()
    log_file = tmp_path / "collector.log"
    handler = logging.FileHandler(log_file)
    logging.getLogger().addHandler(handler)
    previous_level = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    settings = app_settings(engine_url, access_log=True, log_level="debug",
                            trusted_proxies=(ipaddress.ip_network("203.0.113.0/24"),),
                            data_dir=tmp_path / "data", flush_interval=3600)
    app = create_app(settings, store)
    body = json.dumps({"n": "pageview", "u": "https://leak.test/page?x=1", "d": "leak.test"})
    headers = {"User-Agent": CHROME_UA, "Content-Type": "text/plain"}
    try:
        with TestClient(app, client=(PROXY_PEER, 1234)) as via_proxy:
            for address in FORWARDED:
                forwarded = {**headers, "X-Forwarded-For": address}
                assert via_proxy.post("/api/event", content=body,
                                      headers=forwarded).status_code == 202
                assert via_proxy.post("/api/event", content="{", headers=forwarded
                                      ).status_code == 400
            for address in DIRECT:
                direct = TestClient(app, client=(address, 4321))  # shares the running app
                assert direct.post("/api/event", content=body,
                                   headers=headers).status_code == 202
                direct.get("/pixel.gif?d=leak.test&u=/p", headers=headers)
                direct.post("/api/event", content="{", headers=headers)
            # An outage: the batch waits in the write-ahead log, which is searched below too.
            store.command("RENAME TABLE events TO events_away")
            with pytest.raises(StorageError):
                app.state.writer.flush()
            spooled = [path.read_bytes() for path in (tmp_path / "data" / "wal").glob("*.wal")]
            assert spooled
            store.command("RENAME TABLE events_away TO events")
            app.state.writer.flush()
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(previous_level)
        handler.close()
    assert store.rows("SELECT uniqExact(visitor) FROM events WHERE site = 'leak.test' "
                      "AND pathname = '/page'") == [(4,)]
    assert "/api/event" in log_file.read_text()  # the access log did run
    store.command("SYSTEM FLUSH LOGS")
    searched = files_touched_since(engine_dir, started) + files_touched_since(tmp_path, started)
    contents = {str(path): path.read_bytes() for path in searched}
    contents.update({f"spooled batch {index}": data for index, data in enumerate(spooled)})
    # The search can see what is stored: the site's name is in the new parts and the log.
    assert any(b"leak.test" in content for content in contents.values())
    assert all(b"leak.test" in data for data in spooled)
    for name, content in contents.items():
        for address in DIRECT + FORWARDED:
            for needle in needles(address):
                assert needle not in content, f"{address} found in {name}"

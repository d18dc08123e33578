"""Data files that change on disk: reloaded by a background duty, the old value kept on failure."""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path

import pytest

from collector.enrich import GeoLookup
from collector.maintenance import Maintenance
from collector.reloading import ReloadingFile
from collector.storage import Store
from tests.conftest import CHROME_UA, running_app
from tests.mmdb_files import write_mmdb


class CountingLoader:
    """Reads a file's text, counting the reads; raises on the word "broken"."""

    def __init__(self) -> None:
        self.loads = 0

    def __call__(self, path: Path) -> str:
        self.loads += 1
        text = path.read_text()
        if text == "broken":
            raise ValueError("not a list")
        return text


def replace_file(path: Path, content: bytes, mtime_ns: int) -> None:
    """Install ``content`` at ``path`` atomically, as the update commands do."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_bytes(content)
    os.utime(fresh, ns=(mtime_ns, mtime_ns))  # distinct even on coarse file system clocks
    os.replace(fresh, path)


def test_loads_once_and_again_only_when_the_file_changed(tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "list.txt"
    path.write_text("first")
    loader = CountingLoader()
    file = ReloadingFile(path, loader, describe=lambda text: f"{len(text)} characters")
    assert file.current == "first" and loader.loads == 1
    assert not file.check() and loader.loads == 1  # unchanged: only a stat
    replace_file(path, b"second!", 10**9)
    with caplog.at_level(logging.INFO, logger="collector.reloading"):
        assert file.check()
    assert file.current == "second!"
    assert f"reloaded {path}: 7 characters" in caplog.text


def test_a_broken_replacement_keeps_the_old_value(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "list.txt"
    path.write_text("good")
    loader = CountingLoader()
    file = ReloadingFile(path, loader)
    replace_file(path, b"broken", 10**9)
    with caplog.at_level(logging.WARNING, logger="collector.reloading"):
        assert not file.check()
    assert file.current == "good"
    assert f"keeping what was loaded from {path}: not a list" in caplog.text
    assert not file.check() and loader.loads == 2  # the same broken file is tried once
    replace_file(path, b"fixed", 2 * 10**9)
    assert file.check() and file.current == "fixed"


def test_the_loader_decides_what_a_missing_file_means(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    file = ReloadingFile(path, lambda p: p.read_text() if p.exists() else "")
    assert file.current == ""
    path.write_text("appeared")
    assert file.check() and file.current == "appeared"
    path.unlink()
    assert file.check() and file.current == ""


def test_a_failure_at_startup_is_raised(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("broken")
    with pytest.raises(ValueError, match="not a list"):
        ReloadingFile(path, CountingLoader())


def test_the_maintenance_thread_runs_the_check(tmp_path: Path) -> None:
    path = tmp_path / "list.txt"
    path.write_text("first")
    loaded_on: list[str] = []
    reloaded = threading.Event()

    def load(opened: Path) -> str:
        loaded_on.append(threading.current_thread().name)
        if len(loaded_on) > 1:
            reloaded.set()
        return opened.read_text()

    file = ReloadingFile(path, load)
    background = Maintenance([(0.01, file.check)])
    replace_file(path, b"second", 10**9)
    background.start()
    try:
        assert reloaded.wait(timeout=10)
    finally:
        background.stop()
    assert file.current == "second" and loaded_on[1] == "maintenance"


# --- geo databases ----------------------------------------------------------------------


def test_geo_lookups_use_a_changed_database_once_the_duty_ran(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "geo.mmdb", {"192.0.2.0/24": {"country_code": "FR"}})
    geo = GeoLookup(path, None)
    assert geo.lookup("192.0.2.1").country == "FR"
    replacement = write_mmdb(tmp_path / "new.mmdb", {"192.0.2.0/24": {"country_code": "DE"}})
    os.replace(replacement, path)
    os.utime(path, ns=(1, 1))
    assert geo.lookup("192.0.2.1").country == "FR"  # a lookup never looks at the file
    geo.reload_if_changed()
    assert geo.lookup("192.0.2.1").country == "DE"


def test_geo_opt_in_address_cache_is_cleared_on_reload(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "geo.mmdb", {"192.0.2.0/24": {"country_code": "FR"}})
    geo = GeoLookup(path, None, cache_size=16)
    assert geo.lookup("192.0.2.1") is geo.lookup("192.0.2.1")
    replacement = write_mmdb(tmp_path / "new.mmdb", {"192.0.2.0/24": {"country_code": "DE"}})
    os.replace(replacement, path)
    os.utime(path, ns=(1, 1))
    geo.reload_if_changed()
    assert geo.lookup("192.0.2.1").country == "DE"


def test_geo_keeps_the_old_database_when_the_new_file_is_broken(tmp_path: Path) -> None:
    path = write_mmdb(tmp_path / "geo.mmdb", {"192.0.2.0/24": {"country_code": "FR"}})
    geo = GeoLookup(path, None)
    replace_file(path, b"truncated", 10**9)
    geo.reload_if_changed()
    assert geo.lookup("192.0.2.1").country == "FR"


# --- the referrer-spam list, through the app -------------------------------------------


def test_a_changed_spam_list_applies_to_the_next_event(store: Store, engine_url: str,
                                                        tmp_path: Path) -> None:
    spam_list = tmp_path / "referrer-spam.txt"
    spam_list.write_text("1-99seo.com\n")
    event = json.dumps({"n": "pageview", "u": "https://spam.test/", "d": "spam.test",
                        "r": "https://darodar.com/"})

    def dropped() -> str | None:
        response = client.post("/api/event", content=event, headers={"User-Agent": CHROME_UA})
        assert response.status_code == 202
        return response.headers.get("x-collector-dropped")

    with running_app(store, engine_url, spam_list=spam_list) as client:
        assert dropped() is None
        replace_file(spam_list, b"1-99seo.com\ndarodar.com\n", 10**9)
        assert dropped() is None  # not until the background duty has looked
        client.app.state.spam_list.check()  # type: ignore[attr-defined]
        assert dropped() == "spam"
        replace_file(spam_list, b"\xff\xfe not text", 2 * 10**9)
        client.app.state.spam_list.check()  # type: ignore[attr-defined]
        assert dropped() == "spam"  # the broken file left the loaded list in place

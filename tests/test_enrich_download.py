"""The shared downloader of data files: fetch from http(s) or a local file, install atomically."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.enrich.download import fetch, install
from collector.errors import DownloadError


def test_fetch_reads_a_served_file(served: tuple[Path, str]) -> None:
    root, base = served
    (root / "list.txt").write_bytes(b"spam.example\n")
    assert fetch(f"{base}/list.txt") == b"spam.example\n"


def test_fetch_reads_a_local_file_by_path_or_file_url(tmp_path: Path) -> None:
    local = tmp_path / "fetched elsewhere.txt"
    local.write_bytes(b"payload")
    assert fetch(str(local)) == b"payload"
    assert fetch(local.as_uri()) == b"payload"


@pytest.mark.parametrize(("address", "reason"), [
    ("/nonexistent/list.txt", "No such file or directory"),
    ("gopher://lists.example/list.txt", "expected an http(s):// address or a local file"),
    ("http://[::1/list.txt", "Invalid IPv6 URL"),
])
def test_fetch_failures_are_one_download_error(address: str, reason: str) -> None:
    with pytest.raises(DownloadError) as caught:
        fetch(address)
    assert str(caught.value) == f"{address}: {reason}"


def test_fetch_reports_the_http_status(served: tuple[Path, str]) -> None:
    _, base = served
    with pytest.raises(DownloadError) as caught:
        fetch(f"{base}/missing.txt")
    assert str(caught.value) == f"{base}/missing.txt: HTTP 404"


def test_install_replaces_the_file_and_leaves_nothing_else(tmp_path: Path) -> None:
    destination = tmp_path / "lists" / "spam.txt"
    install(destination, b"old\n")
    install(destination, b"new\n", check=lambda path: None)
    assert destination.read_bytes() == b"new\n"
    assert list(destination.parent.iterdir()) == [destination]


def test_a_refused_file_keeps_the_old_one(tmp_path: Path) -> None:
    destination = tmp_path / "spam.txt"
    destination.write_bytes(b"kept\n")
    checked: list[bytes] = []

    def refuse(path: Path) -> None:
        checked.append(path.read_bytes())
        raise DownloadError("not a list")

    with pytest.raises(DownloadError, match="not a list"):
        install(destination, b"<html>", check=refuse)
    assert checked == [b"<html>"]  # the check saw the new bytes, on disk, before the rename
    assert destination.read_bytes() == b"kept\n"
    assert list(tmp_path.iterdir()) == [destination]

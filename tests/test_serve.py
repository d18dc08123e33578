"""``collector serve`` as a user runs it: a real process, a real port, restarts keep data."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import CHROME_UA


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def collector_env(data_dir: Path, port: int) -> dict[str, str]:
    return {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir), "COLLECTOR_PORT": str(port),
            "COLLECTOR_FLUSH_INTERVAL": "0.2"}


@contextmanager
def serving(data_dir: Path, port: int, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    process = start_serving(collector_env(data_dir, port), port, log)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after a clean shutdown, hence -SIGTERM.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM), log.read_text()
        assert log.read_text().count("Application shutdown complete") >= 1


def start_serving(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """``collector serve`` with ``env``, once it answers on ``port`` (its output in ``log``)."""
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-m", "collector", "serve"], env=env,
                                   stdout=output, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=1)
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                time.sleep(0.1)
    except BaseException:
        process.kill()
        process.wait()
        raise
    return process


def send_pageview(port: int, path: str) -> int:
    body = json.dumps({"n": "pageview", "u": f"https://serve.test{path}", "d": "serve.test"})
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/event", data=body.encode(),
                                     headers={"User-Agent": CHROME_UA,
                                              "Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def stored_paths(data_dir: Path) -> list[str]:
    code = ("from collector.settings import Settings\nfrom collector.storage import open_store\n"
            f"s = open_store(Settings.from_env({{'COLLECTOR_DATA_DIR': {str(data_dir)!r}}})"
            ".store_url)\n"
            "print('\\n'.join(r[0] for r in s.rows('SELECT pathname FROM events ORDER BY 1')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    return result.stdout.split()


def test_serve_prints_the_snippet_and_restarts_keep_data(tmp_path: Path) -> None:
    data_dir, log, port = tmp_path / "data", tmp_path / "serve.log", free_port()
    with serving(data_dir, port, log):
        assert send_pageview(port, "/first") == 202
        # The data directory is the server's; the command goes through its admin channel.
        listed = subprocess.run([sys.executable, "-m", "collector", "sites", "list"],
                                env=collector_env(data_dir, port), capture_output=True,
                                text=True, timeout=120)
        assert listed.returncode == 0 and "dev mode" in listed.stdout, listed
    output = log.read_text()
    assert '<script defer data-domain="example.com" src="http://localhost:' in output
    assert str(data_dir.resolve()) in output
    with serving(data_dir, port, log):
        assert send_pageview(port, "/second") == 202
    # Stopping flushed the buffer: both events are on disk after two restarts.
    assert stored_paths(data_dir) == ["/first", "/second"]
    assert "127.0.0.1" not in log.read_text().replace(f"http://127.0.0.1:{port}", "")

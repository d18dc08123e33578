"""Operations while ``collector serve`` owns the embedded data directory: the admin channel.

A real server runs in a subprocess (with the test operations of
``tests/admin_operations.py`` registered); clients are other processes calling
``run_operation``, as the CLI does, or raw sockets speaking the protocol.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from collector.operations.channel import MAX_REQUEST_BYTES, SOCKET_NAME, encode_message
from collector.operations.channel_server import AdminChannel
from collector.settings import Settings
from collector.storage import LOCK_FILE_NAME, Store
from tests.admin_operations import pattern
from tests.conftest import CHROME_UA
from tests.test_serve import free_port, send_pageview

ROOT = Path(__file__).resolve().parents[1]
SERVE = ("import runpy, sys, tests.admin_operations\n"
         "sys.argv = ['collector', 'serve']\n"
         "runpy.run_module('collector', run_name='__main__', alter_sys=True)")
CLIENT = """
import hashlib, io, json, sys
import tests.admin_operations
from collector.errors import CollectorError
from collector.operations.runner import run_operation
from collector.settings import Settings

def call(name, params):
    progress, output, notes, answer = [], io.BytesIO(), [], {}
    try:
        answer["result"] = run_operation(
            Settings.from_env(), name, params, output=output, notes=notes,
            progress=lambda done, total, label: progress.append([done, total, label]))
    except CollectorError as error:
        answer["error"] = [type(error).__name__, str(error), getattr(error, "field", None)]
    data = output.getvalue()
    return {**answer, "progress": progress, "notes": notes, "output_bytes": len(data),
            "output_sha256": hashlib.sha256(data).hexdigest()}

print(json.dumps([call(name, params) for name, params in json.loads(sys.argv[1])]))
"""


def environment(data_dir: Path, port: int = 8000) -> dict[str, str]:
    # serve.test always accepted: ingest checks hold whatever sites the tests add.
    return {**os.environ, "COLLECTOR_DATA_DIR": str(data_dir), "COLLECTOR_PORT": str(port),
            "COLLECTOR_FLUSH_INTERVAL": "0.2", "COLLECTOR_SITES": "serve.test"}


class Server:
    def __init__(self, data_dir: Path, port: int, process: subprocess.Popen[bytes],
                 log: Path) -> None:
        self.data_dir, self.port, self.process, self.log = data_dir, port, process, log
        self.socket = data_dir / SOCKET_NAME

    def health(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/health",
                                    timeout=5) as response:
            return dict(json.load(response))

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after a clean shutdown, hence -SIGTERM.
        assert self.process.wait(timeout=60) in (0, -signal.SIGTERM), self.log.read_text()


@contextmanager
def running_server(data_dir: Path) -> Iterator[Server]:
    """``collector serve`` with the test operations, up once /api/health answers."""
    log, port = data_dir.parent / "serve.log", free_port()
    with log.open("ab") as output:
        process = subprocess.Popen([sys.executable, "-c", SERVE], cwd=ROOT, stdout=output,
                                   stderr=subprocess.STDOUT, env=environment(data_dir, port))
    server = Server(data_dir, port, process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                server.health()
                break
            except OSError:
                time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            server.stop()


def call(data_dir: Path, *calls: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What ``run_operation`` answered for each call, in a client process of its own."""
    result = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(calls)], cwd=ROOT,
                            env=environment(data_dir), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    # Not under pytest's own temporary directory, which other accounts cannot enter:
    # the permission test needs them to reach the socket, and be turned away by its mode.
    root = Path(tempfile.mkdtemp(prefix="admin-channel-"))
    root.chmod(0o755)
    try:
        with running_server(root / "data") as running:
            yield running
    finally:
        shutil.rmtree(root)


def test_status_and_operations_come_from_the_running_server(server: Server) -> None:
    status, where = call(server.data_dir, ("server.status", {}), ("test.where", {}))
    assert status["result"] == {
        "ran_in": "server", "pid": server.process.pid, "version": "0.1.0",
        "uptime_seconds": status["result"]["uptime_seconds"],
        "store": f"chdb://{server.data_dir.resolve() / 'clickhouse'}", "embedded": True,
        "admin_socket": str(server.socket.resolve()), "buffered_rows": 0, "spooled_batches": 0}
    assert 0 <= status["result"]["uptime_seconds"] < 600
    # Run on a connection of its own, not the one the writer inserts through.
    assert where["result"] == {"in_server": True, "own_connection": True, "answers": 1}


def test_errors_come_back_as_the_same_class_with_message_and_field(server: Server) -> None:
    failed, crashed, after = call(
        server.data_dir, ("test.fail", {"reason": "no such plan", "field": "plan"}),
        ("test.crash", {}), ("server.status", {}))
    assert failed["error"] == ["InvalidField", "no such plan", "plan"]
    name, message, field = crashed["error"]
    assert name == "CollectorError" and field is None
    assert "test.crash failed in the server (RuntimeError: a bug in an operation)" in message
    assert after["result"]["pid"] == server.process.pid  # a bug does not take the server down


CALLS: tuple[tuple[str, dict[str, Any]], ...] = (
    # Pauses over the progress throttle's interval: every report is relayed.
    ("test.count", {"up_to": 4, "pause": 0.15}),
    ("test.stream", {"size": 300_001}),
    ("test.notes", {"lines": ["first warning", "second"]}),
    ("test.fail", {"reason": "bad", "field": None}),
)


def test_progress_output_and_notes_are_relayed_as_when_the_server_is_stopped(
        server: Server, tmp_path: Path) -> None:
    answers = call(server.data_dir, *CALLS)
    counted, streamed, noted, failed = answers
    assert counted["result"] == 4
    assert counted["progress"] == [[done, 4, "counting"] for done in range(5)]
    assert streamed["result"] == {"written": 300_001}
    assert streamed["output_bytes"] == 300_001
    assert streamed["output_sha256"] == hashlib.sha256(pattern(300_001)).hexdigest()
    assert noted["notes"] == ["first warning", "second"] and noted["result"] == "noted"
    assert failed["error"] == ["InvalidField", "bad", None]
    # The same calls with no server: opened directly, answered identically.
    assert call(tmp_path / "stopped", *CALLS) == answers


def test_the_socket_is_private_to_the_servers_account(server: Server) -> None:
    mode = os.lstat(server.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
    assert not os.stat(server.data_dir).st_mode & stat.S_IWOTH
    if os.getuid() != 0 or not Path("/usr/bin/python3").exists():
        pytest.skip("needs root to try the socket from another account")
    probe = ("import os, socket, sys\n"
             "os.lstat(sys.argv[1])  # the path is reachable: only the socket's mode refuses\n"
             "try:\n    socket.socket(socket.AF_UNIX).connect(sys.argv[1])\n"
             "except PermissionError:\n    print('refused')\n")
    other = subprocess.run(["/usr/bin/python3", "-c", probe, str(server.socket)], user="nobody",
                           capture_output=True, text=True, timeout=30, cwd="/")
    assert other.stdout == "refused\n", other.stderr


def test_a_slow_operation_leaves_ingest_and_other_calls_running(
        server: Server, tmp_path: Path) -> None:
    started, release = tmp_path / "started", tmp_path / "release"
    waiting = subprocess.Popen(
        [sys.executable, "-c", CLIENT,
         json.dumps([["test.wait", {"started": str(started), "release": str(release)}]])],
        cwd=ROOT, env=environment(server.data_dir), stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not started.exists():
            assert time.monotonic() < deadline and waiting.poll() is None
            time.sleep(0.05)
        written = server.health()["written_rows"].get("events", 0)
        began = time.monotonic()
        assert send_pageview(server.port, "/during-an-operation") == 202
        assert time.monotonic() - began < 2
        (status,) = call(server.data_dir, ("server.status", {}))  # a second call, meanwhile
        assert status["result"]["ran_in"] == "server"
        # The writer keeps writing: the event reaches the store while the operation waits.
        while server.health()["written_rows"].get("events", 0) <= written:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert waiting.poll() is None  # still waiting for its release
    finally:
        release.touch()
        output, _ = waiting.communicate(timeout=60)
    assert json.loads(output)[0]["result"] == "released"


def raw_request(server: Server, request: bytes) -> socket.socket:
    connection = socket.socket(socket.AF_UNIX)
    connection.settimeout(30)
    connection.connect(str(server.socket))
    connection.sendall(request)
    return connection


def answers(connection: socket.socket) -> list[dict[str, Any]]:
    with connection, connection.makefile("rb") as lines:
        return [json.loads(line) for line in lines]


def test_requests_are_checked_before_anything_runs(server: Server) -> None:
    unknown = raw_request(server, encode_message({"operation": "no.such", "params": {}}))
    accepted, final = answers(unknown)
    assert accepted == {"accepted": True}
    assert final["error"]["class"] == "NotFound" and final["error"]["field"] == "operation"
    oversized = raw_request(server, b'{"operation": "' + b"x" * MAX_REQUEST_BYTES + b'"}\n')
    assert answers(oversized) == [{"error": {
        "class": "InvalidField", "message": f"request over {MAX_REQUEST_BYTES} bytes",
        "field": "params"}}]
    assert answers(raw_request(server, b"[1, 2]\n"))[0]["error"]["field"] == "operation"


def test_a_client_leaving_mid_operation_does_not_hurt_the_server(server: Server) -> None:
    logged_before = len(server.log.read_text())
    for name, params in (("test.stream", {"size": 64 << 20}),
                         ("test.count", {"up_to": 10, "pause": 0.05})):
        connection = raw_request(server, encode_message(
            {"operation": name, "params": params, "progress": True, "output": True}))
        assert connection.recv(64).startswith(b'{"accepted":true}')
        connection.close()
    deadline = time.monotonic() + 30
    while "the client left before the answer" not in server.log.read_text()[logged_before:]:
        assert time.monotonic() < deadline, server.log.read_text()
        time.sleep(0.1)
    (status,) = call(server.data_dir, ("server.status", {}))
    assert status["result"]["pid"] == server.process.pid
    logged = server.log.read_text()[logged_before:]
    assert "the client left during test.stream" in logged and "Traceback" not in logged


def test_a_stale_socket_is_replaced_and_sigterm_removes_the_socket(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(data_dir / SOCKET_NAME))
    stale.close()  # as a killed server leaves it: the file, nobody listening
    os.chmod(data_dir / SOCKET_NAME, 0o644)
    with running_server(data_dir) as server:
        assert stat.S_IMODE(os.lstat(server.socket).st_mode) == 0o600  # a new one
        (status,) = call(data_dir, ("server.status", {}))
        assert status["result"]["pid"] == server.process.pid
        server.stop()
        assert not server.socket.exists()
    assert "removed the stale admin socket" in (tmp_path / "serve.log").read_text()


def test_a_socket_someone_answers_on_is_left_alone(tmp_path: Path, store: Store) -> None:
    path = tmp_path / SOCKET_NAME
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen()
    with listener:
        channel = AdminChannel(path, Settings.from_env({}), store, state=None)
        assert asyncio.run(channel.start()) is False
        assert stat.S_ISSOCK(os.lstat(path).st_mode)
        listener.settimeout(5)
        listener.accept()[0].close()  # the probe reached the live listener, which still serves
    path.unlink()
    path.write_text("not a socket")
    assert asyncio.run(AdminChannel(path, Settings.from_env({}), store, None).start()) is False
    assert path.read_text() == "not a socket"


@contextmanager
def directory_owned_elsewhere(data_dir: Path) -> Iterator[int]:
    """The embedded data directory locked by another process (its pid), as a server holds it."""
    lock = data_dir / "clickhouse" / LOCK_FILE_NAME
    lock.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, os, sys, time\n"
         "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
         "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, str(os.getpid()).encode())\n"
         "print('locked', flush=True); time.sleep(120)\n", str(lock)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_busy_directory_without_a_listening_channel_is_told_clearly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with directory_owned_elsewhere(data_dir) as pid:
        (absent,) = call(data_dir, ("server.status", {}))
        dead = socket.socket(socket.AF_UNIX)
        dead.bind(str(data_dir / SOCKET_NAME))
        dead.close()
        (silent,) = call(data_dir, ("server.status", {}))
    directory = data_dir.resolve() / "clickhouse"
    assert absent["error"][0] == "DataDirectoryBusy"
    assert f"the data directory {directory} is in use by pid {pid}" in absent["error"][1]
    assert f"it has no admin channel {data_dir.resolve() / SOCKET_NAME}" in absent["error"][1]
    assert silent["error"][0] == "DataDirectoryBusy"
    assert (f"the data directory {directory} is in use by pid {pid} but its admin channel "
            f"{data_dir.resolve() / SOCKET_NAME} does not answer") in silent["error"][1]


def collector(data_dir: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector", *arguments], cwd=ROOT,
                          env=environment(data_dir), capture_output=True, text=True,
                          timeout=120)


def dropped_because(port: int, domain: str) -> str | None:
    """The reason the server gave for not recording a pageview of ``domain`` (None: kept)."""
    body = json.dumps({"n": "pageview", "u": f"https://{domain}/", "d": domain}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/event", data=body,
                                     headers={"User-Agent": CHROME_UA})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 202
        return response.headers.get("X-Collector-Dropped")


def query_status(port: int, key: str, site: str) -> int:
    body = json.dumps({"site_id": site, "date_range": "7d", "metrics": ["visitors"]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/api/v2/query", data=body,
                                     headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def test_cli_commands_work_while_the_server_runs_as_when_it_is_stopped(
        server: Server, tmp_path: Path) -> None:
    def session(data_dir: Path) -> list[subprocess.CompletedProcess[str]]:
        return [collector(data_dir, "sites", "add", "shop.example.com"),
                collector(data_dir, "keys", "create", "--site", "shop.example.com"),
                collector(data_dir, "sites", "list", "--json")]

    assert dropped_because(server.port, "shop.example.com") == "unknown-site"
    running = session(server.data_dir)
    assert all(result.returncode == 0 for result in running), running
    # The server knows the new site at once, not at its next periodic reload.
    assert dropped_because(server.port, "shop.example.com") is None
    key = running[1].stdout.splitlines()[-1]
    assert query_status(server.port, key, "shop.example.com") == 200
    assert query_status(server.port, key + "x", "shop.example.com") == 401
    stopped = session(tmp_path / "stopped")
    assert [result.returncode for result in stopped] == [0, 0, 0], stopped
    assert running[0].stdout == stopped[0].stdout
    assert json.loads(running[2].stdout) == json.loads(stopped[2].stdout)
    assert {site["domain"] for site in json.loads(running[2].stdout)["sites"]} \
        >= {"shop.example.com", "serve.test"}

    def without_secrets(output: str) -> str:
        return re.sub(r"ck_[\w-]+|\b[0-9a-f]{12}\b", "...", output)

    assert without_secrets(running[1].stdout) == without_secrets(stopped[1].stdout)


def test_collector_status_says_who_answered(server: Server, tmp_path: Path) -> None:
    served = collector(server.data_dir, "status", "--json")
    assert served.returncode == 0, served
    assert json.loads(served.stdout)["ran_in"] == "server"
    assert json.loads(served.stdout)["pid"] == server.process.pid
    text = collector(server.data_dir, "status").stdout
    assert f"serving, pid {server.process.pid}, up " in text and "buffered rows: 0" in text
    direct = json.loads(collector(tmp_path / "stopped", "status", "--json").stdout)
    assert direct["ran_in"] == "direct" and direct["uptime_seconds"] is None
    assert "no `collector serve` runs on this data directory" \
        in collector(tmp_path / "stopped", "status").stdout

"""The admin channel: operations sent to a running ``collector serve`` over a Unix socket.

With the embedded engine one process owns the data directory, so while the server
runs a command cannot open the store itself. The server listens on
``DATA_DIR/admin.sock`` (mode 0600: only its own account, and root, can connect)
and runs each operation it is sent, in a worker thread on a connection of its own,
with ``server_state`` set to the app's state. One connection carries one call,
as newline-delimited JSON:

    client → {"operation": "sites.add", "params": {...}, "progress": true, "output": false}
    server → {"accepted": true}                            at once
             {"progress": [done, total, label]}            any number, throttled
             {"output": "<base64>"}                        any number, in order
             {"result": value, "notes": [...]}             or
             {"error": {"class": "InvalidField", "message": ..., "field": ...}, "notes": [...]}

The client relays progress and output as they arrive and re-raises an error as
the same class from ``collector.errors``, so a command cannot tell where it ran.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from collector import errors
from collector.errors import (
    CollectorError,
    DataDirectoryBusy,
    InvalidField,
    StorageUnavailable,
)
from collector.operations import Progress
from collector.settings import Settings
from collector.storage import LOCK_FILE_NAME

SOCKET_NAME = "admin.sock"
# A request is a name and a few options; anything bigger is not a request.
MAX_REQUEST_BYTES = 1 << 20
# Results are small (a list of sites, a key); streams travel as output chunks instead.
MAX_MESSAGE_BYTES = 64 << 20
OUTPUT_CHUNK_BYTES = 48 << 10  # 64 KiB once base64-encoded
# How long a server that accepted the connection may take to acknowledge the request.
ACCEPT_TIMEOUT_SECONDS = 10.0
# The longest path a Unix socket address can hold (sun_path, less its terminating NUL).
MAX_SOCKET_PATH_BYTES = 107


def socket_path(settings: Settings) -> Path:
    return settings.data_dir.resolve() / SOCKET_NAME


def encode_message(message: dict[str, Any]) -> bytes:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def error_message(error: CollectorError) -> dict[str, Any]:
    """An error as the channel carries it: class name, message and field."""
    return {"class": type(error).__name__, "message": str(error),
            "field": getattr(error, "field", None)}


def raised_error(carried: dict[str, Any]) -> CollectorError:
    """The error ``error_message`` described, as the same class when the client knows it."""
    message, field = str(carried.get("message", "")), carried.get("field")
    known = getattr(errors, str(carried.get("class")), None)
    if not (isinstance(known, type) and issubclass(known, CollectorError)):
        return CollectorError(message)
    if issubclass(known, errors.ClientError):
        return known(message, field if isinstance(field, str) else None)
    return known(message)


def parsed_request(line: bytes) -> tuple[str, dict[str, Any], bool, bool]:
    """Name, params, and whether progress and output are wanted; InvalidField if malformed."""
    try:
        request = json.loads(line)
    except ValueError:
        raise InvalidField("the request is not JSON", "request") from None
    if not isinstance(request, dict) or not isinstance(request.get("operation"), str):
        raise InvalidField("the request names no operation", "operation")
    params = request.get("params", {})
    if not isinstance(params, dict):
        raise InvalidField("params must be an object", "params")
    return (request["operation"], params, bool(request.get("progress")),
            bool(request.get("output")))


def call_server(settings: Settings, name: str, params: dict[str, Any], *,
                progress: Progress | None = None, output: BinaryIO | None = None,
                notes: Callable[[str], None] | None = None) -> Any:
    """The result of operation ``name`` run by the server owning the data directory.

    Raises DataDirectoryBusy when no server answers on the admin socket, and the
    operation's own error, re-raised here, when it fails in the server.
    """
    path = socket_path(settings)
    connection = _connect(settings, path)
    with connection, connection.makefile("rb") as answers:
        connection.sendall(encode_message({"operation": name, "params": params,
                                           "progress": progress is not None,
                                           "output": output is not None}))
        accepted = _next_message(answers, path)
        if not accepted.get("accepted"):
            return _final(accepted, notes)
        connection.settimeout(None)  # an operation may take as long as it needs
        while True:
            message = _next_message(answers, path)
            if "progress" in message and progress is not None:
                done, total, label = message["progress"]
                progress(int(done), int(total), str(label))
            elif "output" in message and output is not None:
                output.write(base64.b64decode(message["output"]))
            elif "result" in message or "error" in message:
                if output is not None:
                    output.flush()
                return _final(message, notes)


def _final(message: dict[str, Any], notes: Callable[[str], None] | None) -> Any:
    for note in message.get("notes") or ():
        if notes is not None:
            notes(str(note))
    if "error" in message:
        raise raised_error(message["error"])
    if "result" not in message:
        raise StorageUnavailable(f"the admin channel answered without a result: {message}")
    return message["result"]


def _connect(settings: Settings, path: Path) -> socket.socket:
    """A connection to the server's admin socket, after checking who owns it."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH_BYTES:
        raise DataDirectoryBusy(f"{_in_use(settings)}, and its admin socket path {path} is too "
                                f"long for a Unix socket ({MAX_SOCKET_PATH_BYTES} bytes at most)")
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        raise DataDirectoryBusy(f"{_in_use(settings)} and its admin channel {path} "
                                "has just gone (the server is stopping?)") from None
    _check_owner(path, status)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.settimeout(ACCEPT_TIMEOUT_SECONDS)
    try:
        connection.connect(os.fspath(path))
    except OSError as error:
        connection.close()
        raise DataDirectoryBusy(
            f"{_in_use(settings)} but its admin channel {path} does not answer "
            f"({error.strerror or error})") from None
    return connection


def _check_owner(path: Path, status: os.stat_result) -> None:
    """Refuse a socket that someone else could have put there (a writable data directory):
    it must be ours, or belong to the owner of the data directory."""
    if not stat.S_ISSOCK(status.st_mode):
        raise DataDirectoryBusy(f"{path} is not a socket: refusing to use it as admin channel")
    directory_owner = os.stat(path.parent).st_uid
    if status.st_uid not in (os.getuid(), directory_owner):
        raise DataDirectoryBusy(
            f"refusing the admin channel {path}: it belongs to uid {status.st_uid}, neither "
            f"you nor the owner of {path.parent} (uid {directory_owner})")


def _in_use(settings: Settings) -> str:
    """'the data directory D is in use by pid N', from the owner's lock file."""
    directory = Path(settings.store_url[len("chdb://"):]).expanduser().resolve()
    try:
        owner = (directory / LOCK_FILE_NAME).read_text().strip() or "unknown"
    except OSError:
        owner = "unknown"
    return f"the data directory {directory} is in use by pid {owner}"


def _next_message(answers: BinaryIO, path: Path) -> dict[str, Any]:
    try:
        line = answers.readline(MAX_MESSAGE_BYTES + 1)
    except TimeoutError:
        raise StorageUnavailable(
            f"the admin channel {path} accepted the connection but does not answer "
            f"(no reply within {ACCEPT_TIMEOUT_SECONDS:.0f} s)") from None
    except OSError as error:
        raise StorageUnavailable(f"the admin channel {path} failed: {error}") from None
    if not line.endswith(b"\n"):
        if len(line) > MAX_MESSAGE_BYTES:
            raise StorageUnavailable(
                f"the admin channel {path} sent a message over {MAX_MESSAGE_BYTES} bytes")
        raise StorageUnavailable(
            f"the server closed the admin channel {path} before the operation finished "
            "(did it stop? its log says more)")
    try:
        message = json.loads(line)
    except ValueError:
        message = None
    if not isinstance(message, dict):
        raise StorageUnavailable(f"the admin channel {path} sent {line[:80]!r}")
    return message

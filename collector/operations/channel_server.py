"""The server's end of the admin channel (``collector.operations.channel`` has the protocol).

``AdminChannel`` listens on ``DATA_DIR/admin.sock`` on the app's event loop. Each
operation runs in a thread of its own, on a store connection of its own, so neither
the event loop (ingest) nor the writer's connection ever waits for it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import logging
import os
import socket
import stat
import struct
import threading
import time
from pathlib import Path
from typing import Any

from collector.errors import CollectorError, InvalidField, NotFound
from collector.operations import OperationContext, Progress, load_operations
from collector.operations.channel import (
    MAX_MESSAGE_BYTES,
    MAX_REQUEST_BYTES,
    MAX_SOCKET_PATH_BYTES,
    OUTPUT_CHUNK_BYTES,
    encode_message,
    error_message,
    parsed_request,
    socket_path,
)
from collector.settings import Settings
from collector.storage import Store, open_store

logger = logging.getLogger("collector.admin")

PROGRESS_INTERVAL_SECONDS = 0.1
# How long shutdown waits for operations still running before it closes the store.
SHUTDOWN_GRACE_SECONDS = 30.0


class AdminChannel:
    """Runs operations sent to ``path`` with the server's settings, store and state."""

    def __init__(self, path: Path, settings: Settings, store: Store, state: Any) -> None:
        self.path = path
        self._settings = settings
        self._store = store
        self._state = state
        self._server: asyncio.AbstractServer | None = None
        self._inode: int | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> bool:
        """Listen, unless the path is taken by something alive (then say why and return False)."""
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH_BYTES:
            logger.warning("admin channel off: %s is too long for a Unix socket; commands "
                           "cannot reach this server (use a shorter COLLECTOR_DATA_DIR)", self.path)
            return False
        if not _clear_stale_socket(self.path):
            return False
        _warn_if_others_may_write(self.path.parent)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(os.fspath(self.path))
            # Before listen(): until then a connection is refused, so no other account
            # can get in between the socket appearing and its mode being set.
            os.chmod(self.path, 0o600)
            listener.listen()
        except OSError:
            listener.close()
            raise
        self._inode = os.lstat(self.path).st_ino
        self._server = await asyncio.start_unix_server(self._serve, sock=listener,
                                                       limit=MAX_REQUEST_BYTES)
        logger.info("admin channel on %s (mode 0600)", self.path)
        return True

    async def stop(self) -> None:
        """Stop accepting, remove the socket, give running operations a moment to finish."""
        if self._server is None:
            return
        self._server.close()
        self._remove_socket()
        if self._connections:
            logger.info("waiting for %d running operation(s)", len(self._connections))
            _, unfinished = await asyncio.wait(self._connections,
                                               timeout=SHUTDOWN_GRACE_SECONDS)
            for task in unfinished:
                logger.warning("shutdown: an operation still runs after %.0f s; its "
                               "client sees the channel close", SHUTDOWN_GRACE_SECONDS)
                task.cancel()

    def _remove_socket(self) -> None:
        try:
            if os.lstat(self.path).st_ino == self._inode:  # never a successor's socket
                self.path.unlink()
        except FileNotFoundError:
            pass

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._answer(reader, writer)
        except ConnectionError:
            logger.info("admin channel: the client left before the answer")
        finally:
            self._connections.discard(task)
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
        except ValueError:  # over the reader's limit
            await _send(writer, {"error": error_message(InvalidField(
                f"request over {MAX_REQUEST_BYTES} bytes", "params"))})
            return
        if not line:
            return  # a probe (a starting server checking whether we are alive)
        try:
            name, params, wants_progress, wants_output = parsed_request(line)
        except CollectorError as error:
            await _send(writer, {"error": error_message(error)})
            return
        uid = _peer_uid(writer)
        await _send(writer, {"accepted": True})
        started = time.monotonic()
        final = await self._in_a_thread(name, params, _Link(asyncio.get_running_loop(), writer),
                                        wants_progress, wants_output)
        logger.info("admin channel: %s from uid %s: %s in %.2f s", name, uid,
                    "failed" if "error" in final else "done", time.monotonic() - started)
        await _send(writer, final)

    async def _in_a_thread(self, name: str, params: dict[str, Any], link: _Link,
                           wants_progress: bool, wants_output: bool) -> dict[str, Any]:
        """The final message of the operation, run in a thread of its own.

        A daemon thread: an operation still running when the process exits (after the
        shutdown grace) must not hold the exit up.
        """
        loop = asyncio.get_running_loop()
        done: asyncio.Future[dict[str, Any]] = loop.create_future()

        def work() -> None:
            final = self._execute(name, params, link.progress if wants_progress else None,
                                  link.output() if wants_output else None)
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody to tell
                loop.call_soon_threadsafe(_settle, done, final)

        threading.Thread(target=work, name=f"operation {name}", daemon=True).start()
        return await done

    def _execute(self, name: str, params: dict[str, Any], progress: Progress | None,
                 output: io.BufferedWriter | None) -> dict[str, Any]:
        """The final message of operation ``name`` (worker thread)."""
        context: OperationContext | None = None
        try:
            function = load_operations().get(name)
            if function is None:
                raise NotFound(f"no operation {name!r} in the running server (an older "
                               "version? restart it)", "operation")
            # A connection of its own: the app's store serializes its calls, and a long
            # operation on it would hold up the writer's inserts.
            store = open_store(self._store.url, self._store.database)
            try:
                context = OperationContext(store, self._settings, output=output,
                                           server_state=self._state)
                if progress is not None:
                    context.progress = progress
                result = function(context, **params)
            finally:
                store.close()
                if output is not None:
                    output.close()  # sends what is still buffered, before the result
            final: dict[str, Any] = {"result": result}
            if len(encode_message(final)) > MAX_MESSAGE_BYTES:
                raise CollectorError(f"the result of {name} is over {MAX_MESSAGE_BYTES} bytes, "
                                     "too large for the admin channel")
        except CollectorError as error:
            final = {"error": error_message(error)}
        except BrokenPipeError:
            logger.info("admin channel: the client left during %s", name)
            final = {"error": error_message(CollectorError("the client left"))}
        except Exception as error:  # a bug: the server keeps running, the log keeps the trace
            logger.exception("admin channel: %s failed", name)
            final = {"error": error_message(CollectorError(
                f"{name} failed in the server ({type(error).__name__}: {error}); "
                "its log has the details"))}
        final["notes"] = context.notes if context is not None else []
        return final


class _Link:
    """The worker thread's side of one connection: messages go out through the event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter) -> None:
        self._loop = loop
        self._writer = writer
        self._last_progress = 0.0
        self.gone = False

    def send(self, message: dict[str, Any]) -> None:
        """Blocks until the message is on its way: a slow reader slows the operation down
        instead of filling the server's memory."""
        if self.gone:
            raise BrokenPipeError("the client left")
        try:
            asyncio.run_coroutine_threadsafe(_send(self._writer, message), self._loop).result()
        except (ConnectionError, RuntimeError):  # RuntimeError: the loop has stopped
            self.gone = True
            raise BrokenPipeError("the client left") from None

    def progress(self, done: int, total: int, label: str) -> None:
        now = time.monotonic()
        if done < total and now - self._last_progress < PROGRESS_INTERVAL_SECONDS:
            return
        self._last_progress = now
        try:
            self.send({"progress": [done, total, label]})
        except BrokenPipeError:
            pass  # progress is for the operator's eyes; the operation carries on

    def output(self) -> io.BufferedWriter:
        return io.BufferedWriter(_ChannelOutput(self), OUTPUT_CHUNK_BYTES)


class _ChannelOutput(io.RawIOBase):
    """Bytes written by an operation, sent as output messages (a gone client: BrokenPipeError)."""

    def __init__(self, link: _Link) -> None:
        self._link = link

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        for start in range(0, len(view), OUTPUT_CHUNK_BYTES):
            chunk = view[start:start + OUTPUT_CHUNK_BYTES]
            self._link.send({"output": base64.b64encode(chunk).decode("ascii")})
        return len(view)


def _settle(future: asyncio.Future[dict[str, Any]], final: dict[str, Any]) -> None:
    if not future.done():  # cancelled at shutdown
        future.set_result(final)


async def _send(writer: asyncio.StreamWriter, message: dict[str, Any]) -> None:
    if writer.is_closing():
        raise ConnectionResetError("the client left")
    writer.write(encode_message(message))
    await writer.drain()


def _clear_stale_socket(path: Path) -> bool:
    """True when ``path`` is free: absent, or a socket nobody listens on (removed here)."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return True
    if not stat.S_ISSOCK(status.st_mode):
        logger.warning("admin channel off: %s exists and is not a socket; not touching it", path)
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(os.fspath(path))
    except ConnectionRefusedError:
        path.unlink()  # left by a server that was killed: nobody answers on it
        logger.info("removed the stale admin socket %s", path)
        return True
    except OSError as error:
        logger.warning("admin channel off: %s cannot be probed (%s); not touching it",
                       path, error)
        return False
    finally:
        probe.close()
    logger.warning("admin channel off: another running server answers on %s", path)
    return False


def _warn_if_others_may_write(directory: Path) -> None:
    # Whoever can write the directory can replace the socket with one of their own.
    if os.stat(directory).st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        logger.warning("%s is writable by other accounts: they could replace the admin "
                       "socket; chmod go-w it", directory)


def _peer_uid(writer: asyncio.StreamWriter) -> str:
    """The connecting account, for the log (Linux; '?' elsewhere)."""
    connection = writer.get_extra_info("socket")
    if connection is None or not hasattr(socket, "SO_PEERCRED"):
        return "?"
    try:
        credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                            struct.calcsize("3i"))
    except OSError:
        return "?"
    return str(struct.unpack("3i", credentials)[1])


async def start_admin_channel(settings: Settings, store: Store, state: Any
                              ) -> AdminChannel | None:
    """The admin channel of a server on the embedded engine, listening; None when there is
    none (a ClickHouse server lets commands connect themselves) or it could not start."""
    if not store.embedded:
        return None
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    channel = AdminChannel(socket_path(settings), settings, store, state)
    try:
        started = await channel.start()
    except OSError as error:
        # Ingest matters more than the commands: serve on, and say why they cannot reach us.
        logger.error("admin channel off: cannot listen on %s: %s", channel.path, error)
        return None
    return channel if started else None

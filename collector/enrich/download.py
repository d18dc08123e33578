"""Fetching a data file (the geo database, the spam list) and installing it atomically.

``fetch`` reads an http(s):// address, with a timeout and the collector's user
agent, or a local file, so a host without internet access can install a file
fetched elsewhere. ``install`` writes next to the destination, lets the caller
check the new file, then renames it over the old one: a running collector reads
the old file or the new one, never half of one.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

from collector.errors import DownloadError

TIMEOUT_SECONDS = 60
USER_AGENT = "collector-data-update"
_URL_SCHEMES = ("http", "https", "file")
CHUNK_BYTES = 256 * 1024

# (bytes so far, bytes in all or 0 when the server does not say)
DownloadProgress = Callable[[int, int], None]


def fetch(address: str, progress: DownloadProgress | None = None) -> bytes:
    """The bytes at ``address`` (http://, https://, file:// or a local path).

    DownloadError, its text ``ADDRESS: reason``, when they cannot be had.
    """
    try:
        scheme = urlsplit(address).scheme
        if not scheme:
            return Path(address).read_bytes()
        if scheme not in _URL_SCHEMES:
            raise DownloadError(f"{address}: expected an http(s):// address or a local file")
        request = urllib.request.Request(address, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            total = int(response.headers.get("Content-Length") or 0)
            chunks: list[bytes] = []
            while chunk := response.read(CHUNK_BYTES):
                chunks.append(chunk)
                if progress:
                    progress(sum(map(len, chunks)), total)
            return b"".join(chunks)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{address}: HTTP {error.code}") from error
    except urllib.error.URLError as error:
        raise DownloadError(f"{address}: {error.reason}") from error
    except OSError as error:
        raise DownloadError(f"{address}: {error.strerror or error}") from error
    except (http.client.HTTPException, ValueError) as error:
        raise DownloadError(f"{address}: {error or type(error).__name__}") from error


def install(destination: Path, payload: bytes,
            check: Callable[[Path], None] | None = None) -> None:
    """Write ``payload`` to ``destination`` atomically, once ``check`` (which raises to
    refuse) accepted the new file; on any failure the old file stays as it was."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=".download-",
                                             suffix=destination.suffix)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        if check is not None:
            check(Path(temporary))
        # Same directory, so the rename is atomic: readers see the old or the new file.
        os.replace(temporary, destination)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(temporary)
        raise

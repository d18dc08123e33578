"""Lock files: what one process at a time may own (the embedded engine's data, the
write-ahead log).

The lock is the kernel's (``flock``), so it goes with its process however that ends,
SIGKILL included; the file holds the owner's pid, for the message the next one shows.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def acquire(path: Path) -> int | None:
    """A descriptor holding the exclusive lock on ``path``, or None while another holds it
    (another process, or another descriptor of this one)."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    return descriptor


def record_owner(descriptor: int) -> None:
    """Write this process's pid into the lock file it holds."""
    os.ftruncate(descriptor, 0)
    os.write(descriptor, str(os.getpid()).encode())


def owner(path: Path) -> str:
    """Who holds ``path``, as its file says."""
    try:
        return path.read_text(errors="replace").strip()[:32] or "another process"
    except OSError:
        return "another process"

"""One process per store: an exclusive ``flock`` on ``<store>.lock`` beside the SQLite file, holding the pid.

Two ``bot.py run`` on one store both poll and both deliver, so every chat gets every alert twice; SQLite's
own locking serialises their writes but cannot stop that. The lock is advisory and per open file: the
kernel drops it when the process dies (no stale lock after a crash or ``kill -9``), and the pid inside is
only for the error message. Read-only commands (``check``, ``digest --dry-run``, ``match``) do not take it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class StoreLocked(Exception):
    """Another process holds the store's lock; the message names it (and its pid) in one line."""


def lock_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.name + ".lock")


class StoreLock:
    """Held from :meth:`acquire` until :meth:`release` (or the process ends)."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, store_path: Path) -> StoreLock:
        path = lock_path(store_path)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StoreLocked(
                f"the store {store_path} is in use by another bot process (pid {holder}); "
                "stop it first or use another storage.path"
            ) from None
        except OSError:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        return cls(path, fd)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

"""The SQLite backend: one file in WAL mode, the embedded default (no server, two commands to start).

Everything that is about the file itself lives here: the integrity check before opening (``damage``:
not SQLite, truncated, ``PRAGMA quick_check``), the one-process lock beside it (store/lock.py), the
pragmas, the version in ``PRAGMA user_version``, and the check that the file this connection writes is
still the configured one (a deleted or replaced file takes writes that a restart loses).

WAL checkpoints run on a thread of their own in the process that writes the store (``exclusive``: ``run``,
``backfill``, ``demo``): :class:`Checkpointer`. With ``synchronous = NORMAL`` a commit only writes the WAL;
the disk is synced when the WAL is copied into the database file, a checkpoint, which SQLite otherwise runs
inside whichever commit crosses 1,000 pages of WAL. That commit then waited for the disk on the event loop:
the longest stall of a poll cycle (issue 16: 0.1–0.7 s wall for ~25–45 ms of CPU, ``bench/poll.py``'s
longest commit; with the checkpoints moved out, the longest commit's wall time equals its CPU time).
The writing connection keeps an automatic checkpoint at :data:`FALLBACK_PAGES` in case the thread falls
behind (a stuck disk), so the WAL stays bounded either way.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from time import monotonic, sleep

from store.backend import Connection
from store.lock import StoreLock
from store.schema import MIGRATIONS

_HEADER = b"SQLite format 3\x00"
log = logging.getLogger(__name__)
CHECKPOINT_EVERY = 1.0  # seconds between the background thread's passive checkpoints
FALLBACK_PAGES = 20_000  # the writing connection's own automatic checkpoint (~80 MB of WAL), a safety net


class Checkpointer:
    """Passive WAL checkpoints every :data:`CHECKPOINT_EVERY` seconds on a thread with its own connection,
    so no commit of the writing connection waits for the disk. A passive checkpoint never blocks a writer
    or a reader; one that fails (a full disk) is logged once per episode and tried again next time."""

    def __init__(self, path: Path, every: float = CHECKPOINT_EVERY) -> None:
        self.path = path
        self.every = every
        self.checkpoints = 0  # passive checkpoints that copied frames (tests and diagnostics)
        self.attempts = 0  # checkpoints tried, whatever came of them
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """Checkpoint now rather than at the next interval."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        failing = False
        last = (0, 0)
        while not self._stop.is_set():
            self._wake.wait(self.every)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                if conn is None:  # mode=rw: never create the file (a deleted store must stay deleted)
                    uri = f"{self.path.resolve().as_uri()}?mode=rw"
                    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
                    conn.execute("PRAGMA cache_size = -256")  # 256 KiB: a checkpoint reads the WAL, not the cache
                _, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if copied > 0 and (frames, copied) != last:
                    self.checkpoints += 1
                last = (frames, copied)
                if failing:
                    log.info("store_checkpoint_recovered path=%s", self.path)
                failing = False
            except sqlite3.Error as exc:
                if not failing:
                    log.warning("store_checkpoint_failed path=%s error=%s (retried)", self.path, exc)
                failing = True
            self.attempts += 1
        if conn is not None:
            conn.close()


def damage(path: Path) -> str | None:
    """Why the existing file at ``path`` is not a sound SQLite store (not SQLite, truncated, corrupt per
    ``PRAGMA quick_check``), or None. Read-only: ``bot.py check`` uses it beside a running bot."""
    try:
        with path.open("rb") as f:
            header = f.read(100)
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot read the store {path}: {exc.strerror}"
    if size == 0:
        return None  # a new, empty file: created on first run
    if len(header) < 100 or not header.startswith(_HEADER):
        return f"the store {path} is not an SQLite database (or its first page is damaged)"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if page_size < 512 or size % page_size or (pages and size < pages * page_size):
        return f"the store {path} is truncated ({size} bytes; its header says {pages} pages of {page_size})"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check").fetchall()]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return f"the store {path} is corrupt ({exc}); restore it from a backup or move it away"
    if rows != ["ok"]:
        detail = "; ".join(rows[:3]) + (f" (and {len(rows) - 3} more)" if len(rows) > 3 else "")
        return f"the store {path} is corrupt ({detail}); restore it from a backup or move it away"
    return None


def statements(script: str) -> Iterator[str]:
    """The statements of a migration script, split at the semicolons that end one (not those inside a
    trigger's BEGIN … END), each then run inside the migration's transaction. Lexical only, so the
    PostgreSQL scripts (plain DDL) are split by it too."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n\t;"):
                yield pending.strip()
            pending = ""
    if pending.strip(" \n\t;"):
        yield pending.strip()


def _file_identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _set_wal(conn: sqlite3.Connection, wait: float = 5.0) -> None:
    """``PRAGMA journal_mode = WAL``, waiting for another process that opens the same fresh file at the same
    moment: switching the journal mode answers "database is locked" at once, without the busy handler."""
    deadline = monotonic() + wait
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if monotonic() >= deadline:
                raise
            sleep(0.02)


class SqliteBackend:
    name = "sqlite"
    migrations = MIGRATIONS
    base = 1
    skip_locked = ""  # the file lock already makes the store one process's: nothing to skip

    def __init__(self, path: Path) -> None:
        self.path = path
        self._identity: tuple[int, int] | None = None
        self.checkpointer: Checkpointer | None = None

    def start_maintenance(self, conn: Connection) -> None:
        """In the process that writes the store: WAL checkpoints move to a thread (:class:`Checkpointer`)."""
        if self.checkpointer is None:
            conn.execute(f"PRAGMA wal_autocheckpoint = {FALLBACK_PAGES}")
            self.checkpointer = Checkpointer(self.path)
            self.checkpointer.start()

    def stop_maintenance(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
            self.checkpointer = None

    def describe(self) -> str:
        return str(self.path)

    def take_lock(self, exclusive: bool) -> StoreLock | None:
        """Create the folder; with ``exclusive``, take the one-process lock (store/lock.py)."""
        from store.db import StoreError
        from store.lock import StoreLocked

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for the store {self.path}: {exc.strerror}") from None
        if not exclusive:
            return None
        try:
            return StoreLock.acquire(self.path)
        except StoreLocked as exc:
            raise StoreError(str(exc)) from None
        except OSError as exc:
            raise StoreError(f"cannot lock the store {self.path}: {exc.strerror}") from None

    def damage(self) -> str | None:
        p = self.path
        return damage(p) if p.exists() and p.stat().st_size else None

    def connect(self) -> Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 5000")
        _set_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        from store.search import install  # store/search.py imports store/db.py, which imports this module

        install(conn)  # the search index's triggers call search_keys() (store/search.py)
        self._identity = _file_identity(self.path)
        return conn

    def read_version(self, conn: Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def write_version(self, conn: Connection, version: int) -> None:
        conn.execute(f"PRAGMA user_version = {int(version)}")

    def lock_migrations(self, conn: Connection) -> None:
        """Nothing: BEGIN IMMEDIATE already holds the file's write lock."""

    def file_problem(self) -> str | None:
        now_identity = _file_identity(self.path)
        if now_identity is None:
            return f"the store file {self.path} was deleted while the bot was running"
        if self._identity is not None and now_identity != self._identity:
            return f"the store file {self.path} was replaced by another file while the bot was running"
        return None

    def reconnect(self, conn: Connection) -> bool:
        """Nothing to reconnect: a file's connection is not lost."""
        return False

    @contextmanager
    def advisory_lock(self, conn: Connection, name: str) -> Iterator[bool]:
        yield True  # one process per file (store/lock.py): whatever asks already runs alone

    def json_elements(self, column: str, alias: str) -> str:
        return f"json_each({column}) {alias}"

    def json_texts(self, column: str, alias: str) -> str:
        return f"json_each({column}) {alias}"

    def json_first(self, expr: str) -> str:
        return f"json_extract({expr}, '$[0]')"

    def columns(self, conn: Connection, table: str) -> set[str]:
        return {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}

"""What differs between the store's two databases, behind one small interface the Store talks to.

The Store (store/db.py) keeps every query in one portable subset of SQL that SQLite 3.40 and PostgreSQL 15
both run: ``?`` placeholders, ``ON CONFLICT (cols) DO UPDATE SET x = excluded.x`` instead of ``INSERT OR
REPLACE``, ``RETURNING id`` instead of ``lastrowid``, explicit GROUP BY columns, times as ISO text compared
as text. A :class:`Backend` supplies what cannot be portable: the connection, the migration list and the
version bookkeeping, the health check, row locking and advisory locks, and the two JSON idioms the counts
and the search use. store/sqlite.py and store/postgres.py implement it; :func:`backend_for` picks one from
``storage.url`` / ``storage.path``.

Why psycopg 3 with our own SQL rather than SQLAlchemy Core + Alembic: the store already is a few dozen
hand-tuned queries (tests/test_store_plans.py checks SQLite's plans), and the differences are a handful
of idioms; a translation cache of ``?`` → ``%s`` (store/postgres.py) keeps the same strings on both and
costs one dict lookup a query. An ORM layer would be a second way to write every query.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psycopg

from core.dburl import password_problem, redact, scheme_of

if TYPE_CHECKING:
    from store.lock import StoreLock

# The database errors of both drivers: what a caller catches so a failed write pauses or retries the same
# way on either database (delivery/outbox.py, service/app.py, chat/handlers.py).
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)


class TargetError(ValueError):
    """A storage target (URL or path) that cannot name a store; the message says what to write instead."""


class Cursor(Protocol):
    """What the Store reads from a query: rows as tuples, and how many rows a write touched."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ...) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """``store.conn`` on either database: ``execute`` with ``?`` placeholders, tuples back."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Any, /) -> Cursor: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


class Backend(Protocol):
    """One database kind: opened by the Store, asked for what its SQL cannot say portably."""

    name: str  # "sqlite" | "postgresql"
    migrations: tuple[str, ...]  # this dialect's scripts (store/schema.py)
    base: int  # the logical version migrations[0] creates (1 on SQLite, PG_BASE on PostgreSQL)
    skip_locked: str  # appended to a claiming SELECT: " FOR UPDATE SKIP LOCKED" on PostgreSQL, "" on SQLite

    def describe(self) -> str:
        """The store as messages name it (a path, or the URL without a password)."""

    def take_lock(self, exclusive: bool) -> StoreLock | None:
        """Before connecting: SQLite creates the folder and, with ``exclusive``, takes the one-process
        lock; PostgreSQL takes none (workers share the database)."""

    def connect(self) -> Connection: ...

    def start_maintenance(self, conn: Connection) -> None:
        """In the process that writes the store (opened ``exclusive``): background upkeep (SQLite: WAL
        checkpoints on a thread of their own, so no commit waits for the disk)."""

    def stop_maintenance(self) -> None:
        """Stop what :meth:`start_maintenance` started (the store is closing)."""

    def reconnect(self, conn: Connection) -> bool:
        """Reconnect ``conn`` if its connection was lost (True then); psycopg.Error if that fails too."""

    def read_version(self, conn: Connection) -> int: ...

    def write_version(self, conn: Connection, version: int) -> None: ...

    def lock_migrations(self, conn: Connection) -> None:
        """Inside the migration's transaction, before the version is read: one migrator at a time."""

    def file_problem(self) -> str | None:
        """Why the store this connection writes is no longer the configured one (SQLite: a deleted or
        replaced file), or None."""

    def damage(self) -> str | None:
        """Why the store is unsound before it is opened (SQLite: not SQLite, truncated, corrupt), or None."""

    def advisory_lock(self, conn: Connection, name: str) -> AbstractContextManager[bool]: ...

    def json_elements(self, column: str, alias: str) -> str:
        """A FROM item listing the elements of the JSON array in ``column`` as ``alias.value``."""

    def json_texts(self, column: str, alias: str) -> str:
        """A FROM item listing the string elements of the JSON array in ``column`` as text ``alias.value``."""

    def json_first(self, expr: str) -> str:
        """The first element, as text, of the JSON array ``expr``."""

    def columns(self, conn: Connection, table: str) -> set[str]: ...


def dialect_of(conn: object) -> str:
    """ "postgresql" for a connection store/postgres.py made, else "sqlite" (functions that take a bare
    connection, such as store/search.py's, ask this)."""
    return str(getattr(conn, "dialect", "sqlite"))


def backend_for(target: Path | str) -> Backend:
    """The backend of a storage target: a Path or plain path (SQLite), ``sqlite:///rel/path`` or
    ``sqlite:////abs/path`` (SQLAlchemy's spelling: the path is what follows the third slash), or
    ``postgresql://user@host:port/db[?options]`` (``postgres://`` too). TargetError otherwise."""
    from store.postgres import PostgresBackend
    from store.sqlite import SqliteBackend

    if isinstance(target, Path):
        return SqliteBackend(target)
    text = str(target)
    scheme = scheme_of(text)
    if not scheme:
        return SqliteBackend(Path(text))
    if scheme == "sqlite":
        rest = text[len("sqlite://") :]
        if not rest.startswith("/") or len(rest) < 2:
            raise TargetError(f"{text!r}: write sqlite:///relative/path or sqlite:////absolute/path")
        return SqliteBackend(Path(rest[1:]))
    if scheme in ("postgresql", "postgres"):
        problem = password_problem(text)
        if problem:
            raise TargetError(problem)
        return PostgresBackend(text)
    raise TargetError(f"{redact(text)}: storage URLs are sqlite:///path or postgresql://user@host/db")

"""The PostgreSQL backend: one database several workers share (issue 14), through psycopg 3.

The Store's SQL is written once, with ``?`` placeholders; :func:`translate` turns each distinct string
into PostgreSQL's form once (a cache; the Store has a few dozen strings, plus the ``IN (?,?,…)`` variants):

* ``?`` → ``%s`` outside string literals, and every literal ``%`` doubled (psycopg's placeholder syntax);
* ``INSERT OR IGNORE INTO …`` → ``INSERT INTO … ON CONFLICT DO NOTHING`` (before any ``RETURNING``);
* ``BEGIN IMMEDIATE`` → ``BEGIN``.

Nothing else is rewritten: what SQLite spells its own way is written portably in the Store itself.

The connection runs in autocommit mode and the Store's ``BEGIN`` … ``COMMIT`` make its transactions, as
on SQLite; rows come back as tuples. No file lock: several workers share the database by design
(``exclusive`` is accepted and ignored); a job that must run once takes :meth:`PostgresBackend.advisory_lock`,
and claims use ``FOR UPDATE SKIP LOCKED`` (``store.skip_locked``). A lost connection makes every query fail
with ``psycopg.OperationalError`` (one of ``store.DB_ERRORS``, handled as a failed write); the health check
reconnects once, then reports.

The URL never carries a password (store/backend.py refuses one): libpq reads ``PGPASSWORD``, ``~/.pgpass``
and the other ``PG*`` variables itself.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, suppress
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from core.dburl import redact
from store.backend import Connection
from store.schema import PG_BASE, PG_MIGRATIONS

_OR_IGNORE = re.compile(r"\bINSERT\s+OR\s+IGNORE\s+INTO\b", re.IGNORECASE)
_RETURNING = re.compile(r"\sRETURNING\s", re.IGNORECASE)
_BEGIN_IMMEDIATE = re.compile(r"^\s*BEGIN\s+IMMEDIATE\s*;?\s*$", re.IGNORECASE)


@lru_cache(maxsize=4096)
def translate(sql: str) -> str:
    """The PostgreSQL form of one of the Store's statements (see the module docstring)."""
    if _BEGIN_IMMEDIATE.match(sql):
        return "BEGIN"
    out: list[str] = []
    quoted = False
    for c in sql:
        if c == "'":
            quoted = not quoted  # a doubled '' toggles twice: still inside
            out.append(c)
        elif c == "?" and not quoted:
            out.append("%s")
        elif c == "%":
            out.append("%%")
        else:
            out.append(c)
    text = "".join(out)
    if _OR_IGNORE.search(text):
        text = _OR_IGNORE.sub("INSERT INTO", text, count=1)
        found = _RETURNING.search(text)
        if found:
            text = f"{text[: found.start()]} ON CONFLICT DO NOTHING{text[found.start() :]}"
        else:
            text = text.rstrip().rstrip(";") + " ON CONFLICT DO NOTHING"
    return text


def _reason(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


_WRITE_BEGINS = frozenset({"BEGIN IMMEDIATE"})  # the Store's write transactions: pipelined
_ENDS = frozenset({"COMMIT", "ROLLBACK"})


class _Queued:
    """A statement sent in a write transaction's pipeline: its result is read from the server only when
    asked for (a fetch, or ``rowcount``), so the writes in between cost no round trip each."""

    __slots__ = ("_cur", "_pipeline")

    def __init__(self, cur: psycopg.Cursor[Any], pipeline: psycopg.Pipeline | None) -> None:
        self._cur = cur
        self._pipeline = pipeline

    @property
    def rowcount(self) -> int:
        if self._cur.pgresult is None and self._pipeline is not None:
            self._pipeline.sync()
        return self._cur.rowcount

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()

    def fetchmany(self, size: int = 0) -> list[Any]:
        return self._cur.fetchmany(size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._cur)


class PgConnection:
    """``store.conn`` on PostgreSQL: the sqlite3-style surface the Store uses, over one psycopg connection."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self._url = url
        self.raw = self._connect()
        # a write transaction's pipeline (its context manager), from BEGIN to COMMIT
        self._pipeline: AbstractContextManager[psycopg.Pipeline] | None = None
        self._pipe: psycopg.Pipeline | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        # psycopg prepares a statement on the server after its 5th use; PostgreSQL then keeps a generic plan
        # when it looks no dearer than the custom ones. Planned while the items table was small (a new
        # store's first cycles, a store just copied) that plan is a sequential scan, kept as the table grows:
        # the identity look-up's link arm took 4 ms a poll at 4,000 items. A custom plan each time costs
        # a few microseconds of planning and follows the table's real size.
        # (a SET, not the URL's ``options``: those stay the user's)
        conn = psycopg.connect(self._url, autocommit=True, connect_timeout=10)
        conn.execute("SET plan_cache_mode = force_custom_plan")
        return conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> psycopg.Cursor[Any] | _Queued:
        if self._pipeline is not None:
            if sql in _ENDS:
                return self._end(sql)
            return _Queued(self.raw.execute(translate(sql), tuple(parameters)), self._pipe)
        if sql in _WRITE_BEGINS:
            self._pipeline = self.raw.pipeline()
            self._pipe = self._pipeline.__enter__()
            return _Queued(self.raw.execute("BEGIN"), self._pipe)
        return self.raw.execute(translate(sql), tuple(parameters))

    def _end(self, sql: str) -> psycopg.Cursor[Any]:
        """COMMIT: queued, then the pipeline's one sync (any queued statement's error raises here, and the
        transaction is still open for the Store's ROLLBACK). ROLLBACK: the pipeline is dropped first."""
        pipeline, self._pipeline, self._pipe = self._pipeline, None, None
        assert pipeline is not None
        if sql == "COMMIT":
            try:
                cur = self.raw.execute("COMMIT")
            except BaseException as exc:
                with suppress(psycopg.Error):
                    pipeline.__exit__(type(exc), exc, None)
                raise
            pipeline.__exit__(None, None, None)  # the sync: raises the first failed statement's error
            return cur
        with suppress(psycopg.Error):
            pipeline.__exit__(psycopg.Error, psycopg.Error("rollback"), None)
        return self.raw.execute("ROLLBACK")

    def executemany(self, sql: str, parameters: Any, /) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        rows = [tuple(p) for p in parameters]
        if rows:
            cur.executemany(translate(sql), rows)
        return cur

    def stream(self, sql: str, parameters: Sequence[Any], size: int) -> Iterator[list[Any]]:
        """The rows of one query ``size`` at a time through a server-side cursor, in a transaction of its
        own (the export of 100,000 items never sits in memory)."""
        with self.raw.transaction(), self.raw.cursor(name="stream") as cur:
            cur.execute(translate(sql), tuple(parameters))
            while rows := cur.fetchmany(size):
                yield rows

    @property
    def in_transaction(self) -> bool:
        if self._pipeline is not None:
            return True
        return self.raw.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR)

    @property
    def broken(self) -> bool:
        return self.raw.closed or self.raw.broken

    def reconnect(self) -> None:
        self._pipeline = self._pipe = None
        with suppress(psycopg.Error):
            self.raw.close()
        self.raw = self._connect()

    def close(self) -> None:
        self.raw.close()


def _lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class PostgresBackend:
    name = "postgresql"
    migrations = PG_MIGRATIONS
    base = PG_BASE
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str) -> None:
        self.url = url

    def describe(self) -> str:
        return redact(self.url)

    def start_maintenance(self, conn: Connection) -> None:
        """Nothing: the server checkpoints by itself."""

    def stop_maintenance(self) -> None:
        """Nothing to stop."""

    def take_lock(self, exclusive: bool) -> None:
        """No file lock: workers share the database (claims and advisory locks keep work single)."""
        return

    def damage(self) -> str | None:
        return None

    def connect(self) -> Connection:
        from store.db import StoreError

        try:
            return PgConnection(self.url)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to {self.describe()}: {_reason(exc)}") from None

    def read_version(self, conn: Connection) -> int:
        exists = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()[0]
        if not exists:
            return 0
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

    def write_version(self, conn: Connection, version: int) -> None:
        conn.execute("DELETE FROM schema_version")
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (int(version),))

    def lock_migrations(self, conn: Connection) -> None:
        """A transaction advisory lock (released at COMMIT), then the version table: a second worker
        starting at the same moment waits here and then reads the version the first one wrote."""
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key("store:migrations"),))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")

    def file_problem(self) -> str | None:
        return None

    def reconnect(self, conn: Connection) -> bool:
        """Reconnect a lost connection once (True when it was lost); StoreError-free: psycopg.Error raises."""
        if isinstance(conn, PgConnection) and conn.broken:
            conn.reconnect()
            return True
        return False

    @contextmanager
    def advisory_lock(self, conn: Connection, name: str) -> Iterator[bool]:
        """Inside a transaction: ``pg_try_advisory_xact_lock`` (held to its end); outside: a session lock,
        released when the block ends. Yields whether this worker got it (never waits)."""
        key = _lock_key(name)
        if conn.in_transaction:
            yield bool(conn.execute("SELECT pg_try_advisory_xact_lock(?)", (key,)).fetchone()[0])
            return
        got = bool(conn.execute("SELECT pg_try_advisory_lock(?)", (key,)).fetchone()[0])
        try:
            yield got
        finally:
            if got:
                conn.execute("SELECT pg_advisory_unlock(?)", (key,))

    def json_elements(self, column: str, alias: str) -> str:
        return f"jsonb_array_elements(({column})::jsonb) {alias}"

    def json_texts(self, column: str, alias: str) -> str:
        return f"jsonb_array_elements_text(({column})::jsonb) {alias}"

    def json_first(self, expr: str) -> str:
        return f"({expr} ->> 0)"

    def columns(self, conn: Connection, table: str) -> set[str]:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
            "AND table_name = ?",
            (table,),
        )
        return {str(r[0]) for r in rows}

"""``bot.py store copy --from SRC --to DST``: everything one store holds, into another, verified.

The way from one SQLite file to PostgreSQL (issue 14), and between two SQLite files (moving a store to
another disk, compacting it). Decisions, and why:

- **Generic over the schema.** The tables, their columns, keys and foreign keys are read from the source's
  own catalogue (``sqlite_master`` + ``PRAGMA``s, PostgreSQL's ``pg_catalog``), and tables are copied
  parents first (a topological order of the foreign keys). A migration that adds a table or a column is
  carried without an edit here. Left out: SQLite's internal tables, virtual tables and their shadow tables
  (the search index, ``items_fts``: the destination's own triggers rebuild it as the items arrive) and
  each backend's bookkeeping of its schema version. Columns named ``claim*`` (a worker's lease on a feed or
  an outbox row) get the destination's default: a lease of a process that is not running means nothing.
- **Same schema version on both sides, and the source at rest.** The source must be at exactly this
  program's schema version (an older one is migrated by running the bot on it once; a newer one needs a
  newer program), and no bot may be writing it: a SQLite source's lock (store/lock.py) is taken for the
  whole copy, a PostgreSQL source must have no other session connected. The destination is opened (and so
  migrated to the same version) by the store itself, and must be empty: nothing but what opening a store
  writes. Every refusal is one line, before anything is written.
- **One transaction on the destination.** Rows are read in batches (``--batch``, default 5,000) from one
  read snapshot of the source and written in one destination transaction (``executemany`` into SQLite,
  ``COPY`` into PostgreSQL), ids kept; PostgreSQL's identity sequences are then set to ``max(id) + 1``.
  Measured with 100,000 items (188,667 rows, bench/store_backends.py): 31 s into PostgreSQL, 38 s into
  SQLite, memory bounded by the batch; a one-off move can hold one transaction that long, and then a failed
  copy leaves nothing half done (batched commits would need a resumable copy to be as safe). Most of that
  time is the destination's search index: FTS5's triggers (SQLite) or ``item_search`` written beside each
  batch of items (PostgreSQL), each item's keys computed again (store/search.py); the other tables take 4 s.
  Verification happens inside that transaction, before the commit: per table the row count, the sum of
  each integer key column (the ids) and the total length of each text and blob column, on both sides; a
  mismatch is named, rolled back, and exits 1. A destination
  file this command created is removed again when the copy fails.
- **Types converted where the dialects differ**, by the destination column's declared type: BLOB ↔ BYTEA
  (bytes), INTEGER flags ↔ BOOLEAN, ISO-8601 text ↔ TIMESTAMPTZ.
- Passwords never appear in output: a PostgreSQL URL carries none (store/backend.py refuses one; libpq reads
  PGPASSWORD or ~/.pgpass), and every message names a target through ``store.redact``.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol, cast

from store import DB_ERRORS, Store, StoreError, redact
from store.backend import TargetError, backend_for
from store.db import from_ts, ts
from store.lock import StoreLock, StoreLocked
from store.schema import MIGRATIONS

EXIT_OK, EXIT_PROBLEM = 0, 1
DEFAULT_BATCH = 5_000
# What opening a fresh store writes by itself: a destination holding only these counts as empty.
FRESH_KV = frozenset({"identity_backfilled"})
# Each backend's record of its schema version is the destination's own, never copied; nor is a search
# index, which is the destination dialect's own and made from the items (FTS5's items_fts by SQLite's
# triggers, PostgreSQL's item_search here, store/search.py).
BOOKKEEPING = frozenset({"schema_version", "item_search"})
CLAIM = re.compile(r"^claim", re.IGNORECASE)


class CopyError(Exception):
    """Why the copy cannot go ahead (or failed), in one line naming the store and what to do."""


# -- targets -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """A store to open: a SQLite file (``path``) or a PostgreSQL database (``url``)."""

    dialect: str  # sqlite | postgresql
    path: Path | None = None
    url: str | None = None

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else redact(self.url or "")

    @property
    def spec(self) -> str:
        """What :meth:`store.Store.open` takes for this target."""
        return str(self.path) if self.path is not None else self.url or ""


def parse_target(text: str) -> Target:
    """A path, ``sqlite:///relative/path`` / ``sqlite:////absolute/path``, or ``postgresql://user@host/db``
    (no password in it: PGPASSWORD or ~/.pgpass), as ``storage.url`` takes them (store/backend.py)."""
    if not text:
        raise CopyError("empty store target: give a path, sqlite:///path or postgresql://user@host/db")
    try:
        backend = backend_for(text)
    except TargetError as exc:
        raise CopyError(str(exc)) from None
    if backend.name == "sqlite":
        return Target("sqlite", path=Path(getattr(backend, "path", text)))
    return Target("postgresql", url=text)


# -- the schema as each side's catalogue tells it ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str  # the declared type, lower case (sqlite: as written; postgresql: format_type)
    generated: bool = False


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # primary key columns (empty: none)
    parents: tuple[str, ...]  # tables its foreign keys point to

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True, slots=True)
class Tally:
    """A table's verification figures (:func:`_checks`): its row count, then the others."""

    rows: int
    sums: tuple[int, ...]


def _integer(column: Column) -> bool:
    return "int" in column.type


class Side(Protocol):
    """One end of a copy, in its own dialect."""

    target: Target

    def version(self) -> int: ...
    def tables(self) -> dict[str, Table]: ...
    def tally(self, sql: str) -> Tally: ...
    def read(self, table: Table, columns: Sequence[str], batch: int) -> Iterator[list[tuple[Any, ...]]]: ...
    def close(self) -> None: ...


class Destination(Side, Protocol):
    def begin(self) -> None: ...
    def write(self, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None: ...
    def clear(self, table: Table) -> None: ...
    def finish(self, tables: Sequence[Table]) -> None: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...


def order(tables: dict[str, Table]) -> list[Table]:
    """Parents before children (foreign keys), otherwise by name; CopyError for a cycle."""
    done: list[Table] = []
    placed: set[str] = set()
    pending = sorted(tables)
    while pending:
        ready = [n for n in pending if all(p in placed or p == n or p not in tables for p in tables[n].parents)]
        if not ready:
            raise CopyError(f"the foreign keys of {', '.join(pending)} form a cycle; cannot order the copy")
        for name in ready:
            done.append(tables[name])
            placed.add(name)
        pending = [n for n in pending if n not in placed]
    return done


def _qi(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _select(table: Table, columns: Sequence[str]) -> str:
    cols = ", ".join(_qi(c) for c in columns)
    key = ", ".join(_qi(c) for c in table.key)
    return f"SELECT {cols} FROM {_qi(table.name)}" + (f" ORDER BY {key}" if key else "")


def _checks(table: Table, columns: Sequence[str]) -> list[tuple[str, str]]:
    """(name, SQL expression) of a table's verification figures, the same SQL on either dialect: the row
    count, the sum of each integer key column (the ids), and the total length of each text or blob column
    (characters of text, bytes of a blob, on both)."""
    checks = [("rows", "COUNT(*)")]
    for name in columns:
        column = table.column(name)
        if column is None:
            continue
        if name in (table.key or ("id",)) and _integer(column):
            checks.append((f"sum of {name}", f"COALESCE(SUM({_qi(name)}), 0)"))
        elif any(t in column.type for t in ("text", "char", "clob", "blob", "bytea")):
            checks.append((f"length of {name}", f"COALESCE(SUM(LENGTH({_qi(name)})), 0)"))
    return checks


def _tally_sql(table: Table, columns: Sequence[str]) -> str:
    return f"SELECT {', '.join(sql for _name, sql in _checks(table, columns))} FROM {_qi(table.name)}"


# -- SQLite ------------------------------------------------------------------------------------------


def _sqlite_tables(conn: sqlite3.Connection) -> dict[str, Table]:
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' ORDER BY name").fetchall()
    virtual = [name for name, sql in rows if (sql or "").upper().startswith("CREATE VIRTUAL TABLE")]
    tables: dict[str, Table] = {}
    for name, _sql in rows:
        if name.startswith("sqlite_") or name in virtual or any(name.startswith(v + "_") for v in virtual):
            continue
        if name in BOOKKEEPING:
            continue
        info = conn.execute(f"PRAGMA table_xinfo({_qi(name)})").fetchall()  # cid, name, type, notnull, dflt, pk, hidden
        columns = tuple(Column(r[1], (r[2] or "").lower(), generated=r[6] in (2, 3)) for r in info if r[6] != 1)
        key = tuple(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5]))
        parents = tuple(sorted({r[2] for r in conn.execute(f"PRAGMA foreign_key_list({_qi(name)})")}))
        tables[name] = Table(name, columns, key, parents)
    return tables


def _to_sqlite(column: Column) -> Callable[[Any], Any] | None:
    def convert(value: Any) -> Any:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, memoryview):
            return bytes(value)
        if isinstance(value, datetime):
            return ts(value)
        return value

    return convert


class SqliteSource:
    """A SQLite store read from one snapshot, its lock held so that no bot starts on it meanwhile."""

    def __init__(self, target: Target) -> None:
        assert target.path is not None
        self.target = target
        path = target.path
        if not path.exists() or path.stat().st_size == 0:
            raise CopyError(f"no store at {path} to copy from")
        try:
            self.lock: StoreLock | None = StoreLock.acquire(path)
        except StoreLocked as exc:
            raise CopyError(f"{exc}; a copy of a store being written is not a copy") from None
        except OSError as exc:
            raise CopyError(f"cannot lock the store {path}: {exc.strerror}") from None
        try:
            self.conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
            self.conn.execute("BEGIN")  # one snapshot for every read (WAL)
            self._version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as exc:
            self.close()
            raise CopyError(f"cannot read the store {path} ({exc}); is it a store of this bot?") from None

    def version(self) -> int:
        return self._version

    def tables(self) -> dict[str, Table]:
        return _sqlite_tables(self.conn)

    def tally(self, sql: str) -> Tally:
        row = self.conn.execute(sql).fetchone()
        return Tally(int(row[0]), tuple(int(v) for v in row[1:]))

    def read(self, table: Table, columns: Sequence[str], batch: int) -> Iterator[list[tuple[Any, ...]]]:
        cursor = self.conn.execute(_select(table, columns))
        while rows := cursor.fetchmany(batch):
            yield rows

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()
        if self.lock is not None:
            self.lock.release()
            self.lock = None


class SqliteDestination(SqliteSource):
    """A SQLite store opened (created, migrated, locked) by :class:`store.Store`, written in one transaction."""

    def __init__(self, target: Target, store: Store) -> None:
        self.target = target
        self.store = store
        self.conn = cast(sqlite3.Connection, store.conn)
        self.lock = None  # the store holds it
        self._version = store.schema_version

    def begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def clear(self, table: Table) -> None:
        self.conn.execute(f"DELETE FROM {_qi(table.name)}")

    def write(self, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        marks = ", ".join("?" for _ in columns)
        cols = ", ".join(_qi(c) for c in columns)
        self.conn.executemany(f"INSERT INTO {_qi(table.name)} ({cols}) VALUES ({marks})", rows)

    def finish(self, tables: Sequence[Table]) -> None:
        """Nothing to do: an INTEGER PRIMARY KEY continues after the largest rowid by itself."""

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        if self.conn.in_transaction:
            self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self.store.close()


def _sqlite_is_empty(path: Path) -> str | None:
    """None when the file at ``path`` is missing, empty, or a store holding nothing but what opening one
    writes; else what it holds (``feeds: 3 rows``)."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CopyError(f"cannot read the destination {path}: {exc}") from None
    try:
        return _holds(conn.execute, _sqlite_tables(conn))
    except sqlite3.DatabaseError as exc:
        raise CopyError(f"the destination {path} is not a store ({exc}); choose a new file") from None
    finally:
        conn.close()


def _holds(execute: Callable[[str], Any], tables: dict[str, Table]) -> str | None:
    for name in sorted(tables):
        if name == "kv":
            keys = {str(r[0]) for r in execute('SELECT "key" FROM kv').fetchall()}
            extra = sorted(keys - FRESH_KV)
            if extra:
                return f"kv: {len(extra)} rows ({', '.join(extra[:3])}{', …' if len(extra) > 3 else ''})"
            continue
        count = int(execute(f"SELECT COUNT(*) FROM {_qi(name)}").fetchone()[0])
        if count:
            return f"{name}: {count} row{'s' if count != 1 else ''}"
    return None


# -- PostgreSQL --------------------------------------------------------------------------------------

_PG_TABLES = """
SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY c.relname
"""
_PG_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attgenerated <> ''
FROM pg_attribute a WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
_PG_KEY = """
SELECT a.attname FROM pg_index i JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
WHERE i.indrelid = %s AND i.indisprimary ORDER BY k.pos
"""
_PG_PARENTS = "SELECT DISTINCT confrelid::regclass::text FROM pg_constraint WHERE conrelid = %s AND contype = 'f'"


def _pg_connect(target: Target, role: str) -> Any:
    try:
        import psycopg
    except ImportError:
        raise CopyError("PostgreSQL needs the psycopg package: python3 -m pip install 'psycopg[binary]'") from None
    try:
        return psycopg.connect(
            target.url or "", autocommit=True, connect_timeout=10, application_name="dprk-ru-monitor store copy"
        )
    except psycopg.Error as exc:
        detail = redact(" ".join(str(exc).split()))
        raise CopyError(f"cannot connect to the {role} {target}: {detail}") from None


def _pg_tables(conn: Any) -> dict[str, Table]:
    tables: dict[str, Table] = {}
    for oid, name in conn.execute(_PG_TABLES).fetchall():
        if name in BOOKKEEPING:
            continue
        columns = tuple(Column(n, t.lower(), bool(g)) for n, t, g in conn.execute(_PG_COLUMNS, (oid,)).fetchall())
        key = tuple(r[0] for r in conn.execute(_PG_KEY, (oid,)).fetchall())
        parents = tuple(sorted(r[0].strip('"') for r in conn.execute(_PG_PARENTS, (oid,)).fetchall()))
        tables[name] = Table(name, columns, key, parents)
    return tables


def _to_pg(column: Column) -> Callable[[Any], Any] | None:
    kind = column.type
    if kind == "boolean":
        return lambda v: None if v is None else bool(v)
    if kind.startswith("timestamp"):
        return lambda v: from_ts(v) if isinstance(v, str) else v
    if kind == "bytea":
        return lambda v: bytes(v) if isinstance(v, memoryview) else v
    return None


def _pg_version(conn: Any) -> int:
    """The schema version a PostgreSQL store records (its ``schema_version`` table; 0 when it has none)."""
    exists = conn.execute("SELECT to_regclass('schema_version')").fetchone()[0]
    if exists is None:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


class PgSource:
    """A PostgreSQL store read in one REPEATABLE READ snapshot; refused while another session is connected."""

    def __init__(self, target: Target, role: str = "source") -> None:
        self.target = target
        self.conn = _pg_connect(target, role)
        if role == "source":
            others = self.conn.execute(
                "SELECT COUNT(*), string_agg(DISTINCT COALESCE(NULLIF(application_name, ''), 'unnamed'), ', ') "
                "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            ).fetchone()
            if others[0]:
                self.close()
                raise CopyError(
                    f"the store {target} is in use: {others[0]} other session(s) connected ({others[1]}); stop "
                    "every bot on it first: a copy of a store being written is not a copy"
                )
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def version(self) -> int:
        return _pg_version(self.conn)

    def tables(self) -> dict[str, Table]:
        return _pg_tables(self.conn)

    def tally(self, sql: str) -> Tally:
        row = self.conn.execute(sql).fetchone()
        return Tally(int(row[0]), tuple(int(v) for v in row[1:]))

    def read(self, table: Table, columns: Sequence[str], batch: int) -> Iterator[list[tuple[Any, ...]]]:
        with self.conn.cursor(name=f"copy_{table.name}") as cursor:  # server-side: batch by batch
            cursor.itersize = batch
            cursor.execute(_select(table, columns))
            while rows := cursor.fetchmany(batch):
                yield rows

    def close(self) -> None:
        self.conn.close()


class PgDestination(PgSource):
    """A PostgreSQL store, migrated by :class:`store.Store`, written with COPY in one transaction."""

    def __init__(self, target: Target) -> None:
        super().__init__(target, role="destination")  # autocommit: transactions are explicit (begin/commit)

    def begin(self) -> None:
        self.conn.execute("BEGIN")

    def clear(self, table: Table) -> None:
        self.conn.execute(f"DELETE FROM {_qi(table.name)}")

    def write(self, table: Table, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        cols = ", ".join(_qi(c) for c in columns)
        with self.conn.cursor() as cursor, cursor.copy(f"COPY {_qi(table.name)} ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        if table.name == "items":
            self._index(columns, rows)

    def _index(self, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """The search index of the items just written, as ``Store.commit_poll`` keeps it (store/search.py):
        their keys as a tsvector, for every item with a title or a summary."""
        from store.search import vector_text

        at = {name: n for n, name in enumerate(columns)}
        if self.conn.execute("SELECT to_regclass('item_search')").fetchone()[0] is None:
            return
        with (
            self.conn.cursor() as cursor,
            cursor.copy("COPY item_search (item_id, keys) FROM STDIN") as copy,
        ):
            for row in rows:
                title, summary = row[at["title"]], row[at["summary"]]
                if title or summary:
                    copy.write_row((row[at["id"]], vector_text(title, summary)))

    def finish(self, tables: Sequence[Table]) -> None:
        """Each identity/serial sequence set so that the next id is ``max(id) + 1``."""
        for table in tables:
            for column in table.columns:
                seq = self.conn.execute(
                    "SELECT pg_get_serial_sequence(%s, %s)", (_qi(table.name), column.name)
                ).fetchone()[0]
                if seq is None:
                    continue
                top = self.conn.execute(f"SELECT MAX({_qi(column.name)}) FROM {_qi(table.name)}").fetchone()[0]
                self.conn.execute("SELECT setval(%s, %s, false)", (seq, int(top or 0) + 1))

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")


def _pg_is_empty(target: Target) -> str | None:
    side = PgSource(target, role="destination")
    try:
        return _holds(side.conn.execute, side.tables())
    finally:
        side.close()


# -- the copy ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableReport:
    name: str
    source: int
    copied: int
    seconds: float


def _open_source(target: Target) -> Side:
    return SqliteSource(target) if target.dialect == "sqlite" else PgSource(target)


def _check_version(side: Side) -> None:
    version, known = side.version(), len(MIGRATIONS)
    if version < known:
        raise CopyError(
            f"the store {side.target} has schema version {version}, older than this program's ({known}); "
            "run the bot on it once (bot.py run, or bot.py backfill) to migrate it, then copy"
        )
    if version > known:
        raise CopyError(
            f"the store {side.target} has schema version {version}, newer than this program's ({known}); "
            "copy it with the newer program"
        )


def _same(a: Target, b: Target) -> bool:
    if a.path is not None and b.path is not None:
        return a.path.resolve() == b.path.resolve()
    return a.url == b.url


def _open_destination(target: Target) -> tuple[Destination, bool]:
    """The destination, empty, opened through the store (so at this program's schema); whether it was
    created now (a file to remove again if the copy fails)."""
    if target.dialect == "sqlite":
        assert target.path is not None
        holds = _sqlite_is_empty(target.path)
        created = not target.path.exists()
    else:
        holds, created = _pg_is_empty(target), False
    if holds:
        raise CopyError(f"the destination {target} is not empty ({holds}); copy into a new file or an empty database")
    try:
        store = Store.open(target.spec, exclusive=True)
    except StoreError as exc:
        raise CopyError(f"cannot open the destination: {exc}") from None
    if target.dialect == "sqlite":
        return SqliteDestination(target, store), created
    store.close()
    return PgDestination(target), created


def _plan(source: dict[str, Table], destination: dict[str, Table]) -> list[tuple[Table, Table, list[str]]]:
    """(source table, destination table, columns to copy) in copy order; CopyError naming what has no place."""
    plan = []
    for table in order(source):
        there = destination.get(table.name)
        if there is None:
            raise CopyError(f"the destination has no table {table.name}; are both stores of this program?")
        columns = []
        for column in table.columns:
            if column.generated or CLAIM.match(column.name):
                continue
            target = there.column(column.name)
            if target is None:
                raise CopyError(f"the destination's table {table.name} has no column {column.name}")
            if not target.generated:
                columns.append(column.name)
        plan.append((table, there, columns))
    return plan


def copy_store(
    source_text: str,
    destination_text: str,
    *,
    batch: int = DEFAULT_BATCH,
    out: IO[str] | None = None,
    errors: IO[str] | None = None,
) -> int:
    """The command: exit 0 when every table was copied and verified, 1 with a one-line reason otherwise."""
    out = out if out is not None else sys.stdout
    errors = errors if errors is not None else sys.stderr
    try:
        reports, seconds = copy(parse_target(source_text), parse_target(destination_text), batch)
    except CopyError as exc:
        print(f"error: {exc}", file=errors)
        return EXIT_PROBLEM
    width = max(len("table"), *(len(r.name) for r in reports)) if reports else len("table")
    print(f"{'table':<{width}}  {'source':>10}  {'copied':>10}", file=out)
    for r in reports:
        print(f"{r.name:<{width}}  {r.source:>10,}  {r.copied:>10,}", file=out)
    rows = sum(r.copied for r in reports)
    items = next((r for r in reports if r.name == "items"), None)
    big = items is not None and items.copied >= 1000 and items.seconds > 0  # below that, start-up costs dominate
    rate = f"; items {items.copied / items.seconds:,.0f}/s" if big and items else ""
    print(f"copied {rows:,} rows in {len(reports)} tables in {seconds:.1f} s, verified{rate}", file=out)
    return EXIT_OK


def copy(
    source_target: Target, destination_target: Target, batch: int = DEFAULT_BATCH
) -> tuple[list[TableReport], float]:
    """Copy and verify; each table's figures and the seconds it all took. CopyError when refused or failed."""
    if batch < 1:
        raise CopyError(f"--batch must be at least 1, got {batch}")
    if _same(source_target, destination_target):
        raise CopyError(f"the source and the destination are the same store ({source_target})")
    started = time.perf_counter()
    try:
        reports = _run(source_target, destination_target, batch)
    except DB_ERRORS as exc:  # the disk, the server or the connection failed under the copy
        reason = redact(" ".join(str(exc).split())) or type(exc).__name__
        raise CopyError(f"the copy into {destination_target} failed ({reason}); nothing was committed") from None
    return reports, time.perf_counter() - started


def _run(source_target: Target, destination_target: Target, batch: int) -> list[TableReport]:
    source = _open_source(source_target)
    try:
        _check_version(source)
        source_tables = source.tables()
        destination, created = _open_destination(destination_target)
        try:
            reports = _transfer(source, source_tables, destination, batch)
        except BaseException:
            destination.close()
            if created:
                _remove(destination_target)
            raise
        destination.close()
    finally:
        source.close()
    return reports


def _transfer(source: Side, source_tables: dict[str, Table], destination: Destination, batch: int) -> list[TableReport]:
    plan = _plan(source_tables, destination.tables())
    reports: list[TableReport] = []
    to_dst = _to_sqlite if destination.target.dialect == "sqlite" else _to_pg
    destination.begin()
    try:
        for table, there in ((t, d) for t, d, _c in reversed(plan)):
            if table.name == "kv":  # what opening the destination wrote (FRESH_KV) makes way for the source's
                destination.clear(there)
        for table, there, columns in plan:
            began = time.perf_counter()
            converters = [to_dst(col) for col in (there.column(c) for c in columns) if col is not None]
            copied = 0
            for rows in source.read(table, columns, batch):
                if any(c is not None for c in converters):
                    rows = [
                        tuple(v if f is None else f(v) for f, v in zip(converters, row, strict=True)) for row in rows
                    ]
                destination.write(there, columns, rows)
                copied += len(rows)
            reports.append(TableReport(table.name, copied, copied, time.perf_counter() - began))
        destination.finish([there for _t, there, _c in plan])
        _verify(source, destination, plan, reports)
        destination.commit()
    except BaseException:
        with contextlib.suppress(*DB_ERRORS):  # a lost connection has rolled back by itself
            destination.rollback()
        raise
    return reports


def _verify(
    source: Side, destination: Side, plan: list[tuple[Table, Table, list[str]]], reports: list[TableReport]
) -> None:
    """Each table's figures (:func:`_checks`) read back on both sides; CopyError naming the first that differs."""
    for n, (table, _there, columns) in enumerate(plan):
        sql = _tally_sql(table, columns)  # the source's column types decide; the same SQL on both sides
        before, after = source.tally(sql), destination.tally(sql)
        reports[n] = TableReport(table.name, before.rows, after.rows, reports[n].seconds)
        names = [name for name, _sql in _checks(table, columns)]
        for name, a, b in zip(names, (before.rows, *before.sums), (after.rows, *after.sums), strict=True):
            if a != b:
                raise CopyError(
                    f"verification failed for table {table.name}: {name} {a:,} in the source, {b:,} in the "
                    "destination; nothing was committed"
                )


def _remove(target: Target) -> None:
    if target.path is None:
        return
    for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
        Path(f"{target.path}{suffix}").unlink(missing_ok=True)

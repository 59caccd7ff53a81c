"""A throw-away PostgreSQL server for the tests: initdb in a temp folder, started on 127.0.0.1 (and a Unix
socket in that folder), always stopped at the end of the session.

``TEST_POSTGRES_URL`` (a role that may CREATE DATABASE) is used instead when set. Otherwise the server
binaries are looked for on PATH and in /usr/lib/postgresql/*/bin (.ci/run installs the distribution's
``postgresql`` package when they are missing). Run as root, the cluster belongs to the ``postgres`` user,
as initdb refuses root. Durability is off (``--no-sync``, ``fsync=off``): the data is thrown away.

Each test gets an empty migrated database. Measured with ``python bench/pg_test_databases.py`` (2 shared
cores, under load, so noisy: 400-1000 ms a test each way): a fresh schema per test (``options=-csearch_path``,
migrated on open) or a ``CREATE DATABASE … TEMPLATE`` copy of a migrated database (``STRATEGY FILE_COPY`` or
WAL_LOG) all cost ~0.3-1 s of server work a test. So one migrated database is reused and emptied between
tests (DELETE + identities restarted: a few ms), and replaced by a fresh copy whenever a test changed
more than rows (a trigger, a function, the version, a connection left open): ``Databases.reset``. The
store's PostgreSQL cases went from 80 s to 52 s with it (90 tests, load average 8).
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl, or None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).parent
    for folder in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One cluster, started by :meth:`start`, stopped (and its folder removed) by :meth:`stop`."""

    def __init__(self, bindir: Path, *, durable: bool = False) -> None:
        self.bindir = bindir
        self.durable = durable  # fsync and full-page writes on (bench/store_backends.py); tests: off
        self.folder = Path(tempfile.mkdtemp(prefix="pgtest-"))
        self.port = _free_port()
        self.running = False
        self._user: str | None = None
        if os.geteuid() == 0:
            self._user = "postgres"
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._user:
            cmd = ["runuser", "-u", self._user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> PgServer:
        data = self.folder / "data"
        done = self._run("initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                         "--locale=C.UTF-8")  # fmt: skip
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr or done.stdout}")
        atexit.register(self.stop)
        return self.resume()

    def resume(self) -> PgServer:
        """Start (again) on the same port and data."""
        durability = (
            "-c synchronous_commit=off"  # a crash loses the last commits, never the database: SQLite's WAL NORMAL
            if self.durable
            else "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} {durability} -c max_connections=200"
        data = self.folder / "data"
        done = self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        if done.returncode:
            log = (self.folder / "log").read_text(errors="replace") if (self.folder / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout}\n{log}")
        self.running = True
        return self

    def pause(self) -> None:
        """Stop the server as an outage would (connections cut at once), keeping its data. A CHECKPOINT
        first: with ``synchronous_commit=off`` an immediate stop loses the last commits (up to ~0.6 s of
        them), which a real server (synchronous commit on) would have kept."""
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
        self._run("pg_ctl", "-D", str(self.folder / "data"), "-m", "immediate", "-w", "stop")
        self.running = False

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.running:
            self.pause()
        shutil.rmtree(self.folder, ignore_errors=True)


class Databases:
    """Fresh databases on one server (ours or ``TEST_POSTGRES_URL``'s): empty, or copied from a template
    migrated once."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self._names = itertools.count()
        self._prefix = f"t{os.getpid()}_"
        self._template: str | None = None
        self._work: str | None = None
        self._version: int | None = None
        self._tables = 0

    def _url(self, database: str) -> str:
        base, _, rest = self.admin_url.partition("://")
        netloc = rest.split("/", 1)[0]
        query = rest.split("?", 1)[1] if "?" in rest else ""
        return f"{base}://{netloc}/{database}" + (f"?{query}" if query else "")

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)

    def create(self, *, migrated: bool = True) -> str:
        name = f"{self._prefix}{next(self._names)}"
        if migrated:
            self._admin(f"CREATE DATABASE {name} TEMPLATE {self.template()} STRATEGY FILE_COPY")
        else:
            self._admin(f"CREATE DATABASE {name} TEMPLATE template0 STRATEGY FILE_COPY")
        return self._url(name)

    def template(self) -> str:
        if self._template is None:
            from store import Store

            name = f"{self._prefix}template"
            self._admin(f"CREATE DATABASE {name} TEMPLATE template0")
            with Store.open(self._url(name)) as store:
                self._version = store.schema_version
                self._tables = len(store.conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_version'"
                ).fetchall())  # fmt: skip
            self._template = name
        return self._template

    def reused(self) -> str:
        """A migrated database handed to one test after another, emptied between them by :meth:`reset`
        (a fresh copy costs ~0.3 s of server work a test on 2 shared cores; emptying it a few ms)."""
        if self._work is None:
            self._work = self.create()
        return self._work

    def reset(self) -> None:
        """Empty the reused database for the next test (ids start at 1 again); when the test left anything
        but rows behind (a trigger, a function, another version, a connection still open) it is dropped
        instead, and the next test gets a fresh copy."""
        if self._work is None:
            return
        work = self._work
        try:
            with psycopg.connect(work, autocommit=True) as conn:
                conn.execute("SET lock_timeout = '2s'")
                others = conn.execute(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> pg_backend_pid()"
                ).fetchone()
                extras = conn.execute(
                    "SELECT (SELECT COUNT(*) FROM pg_trigger WHERE NOT tgisinternal) + (SELECT COUNT(*) FROM pg_proc p "
                    "JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public')"
                ).fetchone()
                version = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
                tables = [
                    r[0]
                    for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_version'"
                    )
                ]
                if others != (0,) or extras != (0,) or version != (self._version,) or len(tables) != self._tables:
                    raise psycopg.Error("the test changed more than rows")
                # DELETE, not TRUNCATE: a handful of rows, and TRUNCATE makes new files for every table and
                # index (~0.4 s here); foreign keys are not checked meanwhile (replica role), ids restart at 1
                identity = conn.execute(
                    "SELECT table_name, column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND is_identity = 'YES'"
                ).fetchall()
                script = ["SET session_replication_role = replica"]
                script += [f"DELETE FROM {t}" for t in tables]
                script += [f"SELECT setval(pg_get_serial_sequence('{t}', '{c}'), 1, false)" for t, c in identity]
                script.append("SET session_replication_role = DEFAULT")
                conn.execute("; ".join(script))
        except psycopg.Error:
            self._work = None
            self.drop(work)

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        with contextlib.suppress(psycopg.Error):
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        if self._work:
            self.drop(self._work)
        if self._template:
            with contextlib.suppress(psycopg.Error):
                self._admin(f"DROP DATABASE IF EXISTS {self._template} WITH (FORCE)")


def fail_writes(store: object, table: str, message: str = "disk") -> None:
    """Make every INSERT into ``table`` of ``store`` fail with a database error, on either backend (a
    stand-in for a full disk at that write)."""
    conn = store.conn  # type: ignore[attr-defined]
    if store.dialect == "postgresql":  # type: ignore[attr-defined]
        conn.execute(
            f"CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{message}'; END $$"
        )
        conn.execute(f"CREATE TRIGGER boom BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION boom()")
    else:
        conn.execute(f"CREATE TRIGGER boom BEFORE INSERT ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END")

"""A throw-away PostgreSQL server for the tests: initdb in a temp folder, started on 127.0.0.1 (and a Unix
socket in that folder), always stopped at the end of the session.

``TEST_POSTGRES_URL`` (a role that may CREATE DATABASE) is used instead when set. Otherwise the server
binaries are looked for on PATH and in /usr/lib/postgresql/*/bin (.ci/run installs the distribution's
``postgresql`` package when they are missing). Run as root, the cluster belongs to the ``postgres`` user,
as initdb refuses root. Durability is off (``--no-sync``, ``fsync=off``): the data is thrown away.

Each test gets a fresh database: ``CREATE DATABASE … TEMPLATE`` a database migrated once per session.
Measured on this machine against a fresh schema per test (``options=-csearch_path=…`` and the migration
script run into it): the template copy took 11 ms a database against 45 ms a schema, so templates it is.
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

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
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
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        data = self.folder / "data"
        done = self._run("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "log"), "-w", "start")
        if done.returncode:
            log = (self.folder / "log").read_text(errors="replace") if (self.folder / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {done.stderr or done.stdout}\n{log}")
        self.running = True
        return self

    def pause(self) -> None:
        """Stop the server as an outage would (connections cut at once), keeping its data."""
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

    def _url(self, database: str) -> str:
        base, _, rest = self.admin_url.partition("://")
        netloc = rest.split("/", 1)[0]
        query = rest.split("?", 1)[1] if "?" in rest else ""
        return f"{base}://{netloc}/{database}" + (f"?{query}" if query else "")

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create(self, *, migrated: bool = True) -> str:
        name = f"{self._prefix}{next(self._names)}"
        if migrated:
            self._admin(f"CREATE DATABASE {name} TEMPLATE {self.template()}")
        else:
            self._admin(f"CREATE DATABASE {name} TEMPLATE template0")
        return self._url(name)

    def template(self) -> str:
        if self._template is None:
            from store import Store

            name = f"{self._prefix}template"
            self._admin(f"CREATE DATABASE {name} TEMPLATE template0")
            Store.open(self._url(name)).close()
            self._template = name
        return self._template

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        with contextlib.suppress(psycopg.Error):
            self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
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

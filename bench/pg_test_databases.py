"""How each PostgreSQL test gets a fresh database: the three ways measured side by side.

    python bench/pg_test_databases.py [--n 10]

Starts a throw-away server (tests/pgserver.py) and prints milliseconds per test for: a fresh schema
(``options=-csearch_path=…``, the store migrating it on open, dropped after); ``CREATE DATABASE … TEMPLATE``
a migrated database with PostgreSQL 15's default ``STRATEGY WAL_LOG``; the same with ``STRATEGY FILE_COPY``
(what tests/pgserver.py uses) — each including opening the store once and dropping it after.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg

from store import Store
from tests.pgserver import Databases, PgServer, find_bindir


def per_test(n: int, run: Callable[[int], None]) -> float:
    start = time.perf_counter()
    for i in range(n):
        run(i)
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10)
    args = parser.parse_args()
    bindir = find_bindir()
    if bindir is None:
        sys.exit("no PostgreSQL server binaries (initdb, pg_ctl)")
    server = PgServer(bindir).start()
    try:
        template = Databases(server.url()).template()
        with psycopg.connect(server.url(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE schemas")

            def schema(i: int) -> None:
                admin_s = psycopg.connect(server.url("schemas"), autocommit=True)
                admin_s.execute(f"CREATE SCHEMA s{i}")
                Store.open(server.url("schemas") + f"?options=-csearch_path%3Ds{i}").close()
                admin_s.execute(f"DROP SCHEMA s{i} CASCADE")
                admin_s.close()

            def copy(strategy: str) -> Callable[[int], None]:
                def run(i: int) -> None:
                    name = f"{strategy.lower()}{i}"
                    admin.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY {strategy}")
                    Store.open(server.url(name)).close()
                    admin.execute(f"DROP DATABASE {name} WITH (FORCE)")

                return run

            figures = {
                "fresh schema, migrated": per_test(args.n, schema),
                "template copy, WAL_LOG": per_test(args.n, copy("WAL_LOG")),
                "template copy, FILE_COPY (used)": per_test(args.n, copy("FILE_COPY")),
            }
        for label, ms in figures.items():
            print(f"{label:34} {ms:7.0f} ms a test")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

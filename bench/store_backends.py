"""Store backends side by side: one poll cycle of N feeds into SQLite and into PostgreSQL, then store copy.

    python bench/store_backends.py [--feeds 5000] [--latency 0.05] [--every 16] [--backends sqlite,postgresql]
                                  [--pg-fsync-off]

The feeds are bench/poll.py's (20 items each, one in ``--every`` on topic) from its local server in its own
process, 50 ms latency a request. Each backend gets the same thing the bot does each cycle, with one
worker: ``Pipeline.run_cycle`` (fetch, parse and match in the thread pool, identity, stories, one store
transaction per feed) into a fresh store, the first cycle (every item new) and the 304 cycle (nothing new).
PostgreSQL is a throw-away cluster on 127.0.0.1 this script starts and stops (tests/pgserver.py: initdb in a
temp folder) with the durability SQLite has here (WAL, ``synchronous = NORMAL``: a crash may lose the last
commits, never the store): ``fsync`` and full-page writes on, ``synchronous_commit = off``;
``--pg-fsync-off`` runs it as the tests do (nothing reaches the disk), a floor for the database's own work.
Printed per backend: wall and CPU seconds of this process (the bot's side) and the ratio to SQLite, and
the PostgreSQL server's own CPU seconds (its processes, read from /proc: work the client's figure does not
show, and that shares the machine's cores); then ``store copy`` of the filled SQLite store into a new SQLite
file and into PostgreSQL, and back, with items per second.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import multiprocessing
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from poll import cpu_seconds, serve  # the poll benchmark's feed server and CPU clock

REPO = Path(__file__).resolve().parents[1]


def server_cpu(data: Path) -> float:
    """CPU seconds the PostgreSQL cluster in ``data`` has used so far: the postmaster, its live children (the
    bench's backend process among them) and the children that have exited (read from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    postmaster = int((data / "postmaster.pid").read_text().split()[0])
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, …
            pid, ppid = int(stat.parent.name), int(fields[1])
            if pid == postmaster:
                total += sum(int(f) for f in fields[11:15]) / tick  # utime, stime, cutime, cstime
            elif ppid == postmaster:
                total += sum(int(f) for f in fields[11:13]) / tick
    return total


async def cycles(
    spec: str, base: str, feeds: int, concurrency: int, server: Path | None = None
) -> list[tuple[str, float, float, str, float | None]]:
    """(label, wall s, CPU s, summary, the database server's CPU s or None) of the first and the 304 cycle
    into the store at ``spec``; ``server`` is a PostgreSQL cluster's data folder (SQLite runs in-process)."""
    from core.config import FeedConfig, PollingConfig, load_config
    from core.workers import CpuPool
    from delivery.encoder import NoEncoder
    from rules import load_rules
    from service.pipeline import Pipeline
    from store import Store
    from watchers import PollSettings, make_client

    ruleset = load_rules(load_config(str(REPO / "config.yaml")).rule_files)
    polling = PollingConfig(concurrency=concurrency, timeout=30, allow_private_urls=True)
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    pool = CpuPool("thread")
    store = Store.open(spec)
    out = []
    try:
        configs = [FeedConfig(url=f"{base}/feed/{n}", name=f"feed {n}", lang=None, interval=600) for n in range(feeds)]
        store.sync_feeds(configs, now)
        async with make_client(PollSettings.from_config(polling)) as client:
            pipeline = Pipeline(store, client, lambda: ruleset, polling, pool=pool, encoder=NoEncoder())
            for label, at in (("first cycle", now), ("304 cycle", now + timedelta(hours=1))):
                cpu, started = cpu_seconds(), time.perf_counter()
                served = server_cpu(server) if server else 0.0
                report = await pipeline.run_cycle(at)
                wall, used = time.perf_counter() - started, cpu_seconds() - cpu
                out.append((label, wall, used, report.summary(), server_cpu(server) - served if server else None))
    finally:
        store.close()
        pool.close()
    return out


def copy_figures(source: str, destination: str) -> str:
    from cli.store_copy import copy, parse_target

    reports, seconds = copy(parse_target(source), parse_target(destination))
    rows = sum(r.copied for r in reports)
    items = next(r for r in reports if r.name == "items")
    return (
        f"{rows:>9,} rows in {seconds:6.2f} s ({rows / seconds:>9,.0f} rows/s); items table {items.copied:,} in "
        f"{items.seconds:5.2f} s ({items.copied / items.seconds:>8,.0f} items/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--every", type=int, default=16, help="one item in EVERY on topic (default 16 ≈ 6 %%)")
    parser.add_argument(
        "--pg-fsync-off",
        action="store_true",
        help="PostgreSQL as the tests run it (fsync, full-page writes off); default: like SQLite's WAL NORMAL",
    )
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, args.feeds, args.latency, args.every), daemon=True)
    server.start()
    pg: Any = None
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=60)}"
        print(
            f"{args.feeds} feeds × 20 items (1 in {args.every} on topic), {args.latency * 1000:.0f} ms latency, "
            f"concurrency {args.concurrency}, 1 worker"
        )
        with tempfile.TemporaryDirectory() as folder:
            sqlite_path = str(Path(folder) / "bench.sqlite3")
            urls: dict[str, str] = {"sqlite": sqlite_path}
            if "postgresql" in backends:
                pgserver: Any = importlib.import_module("tests.pgserver")  # the tests' throw-away cluster
                bindir = pgserver.find_bindir()
                if bindir is None:
                    raise SystemExit("no PostgreSQL server binaries (initdb, pg_ctl) found")
                pg = pgserver.PgServer(bindir, durable=not args.pg_fsync_off).start()
                import psycopg

                with psycopg.connect(pg.url(), autocommit=True) as conn:
                    for name in ("bench", "copy_target"):
                        conn.execute(f"CREATE DATABASE {name}")
                urls["postgresql"] = pg.url("bench")
            results: dict[str, list[tuple[str, float, float, str, float | None]]] = {}
            for backend in backends:
                data = pg.folder / "data" if backend == "postgresql" else None
                results[backend] = asyncio.run(cycles(urls[backend], base, args.feeds, args.concurrency, data))
                for label, wall, cpu, _summary, _served in results[backend]:
                    print(f"  ({backend} {label}: {wall:.2f} s wall, {cpu:.2f} s CPU)", flush=True)
            print(f"{'':<12}" + "".join(f"{b:>34}" for b in backends) + ("    ratio" if len(backends) > 1 else ""))
            for n, label in enumerate(("first cycle", "304 cycle")):
                cells = "".join(f"{results[b][n][1]:>14.2f} s wall {results[b][n][2]:>7.2f} s CPU" for b in backends)
                ratio = (
                    f"  {results[backends[1]][n][1] / results[backends[0]][n][1]:5.2f}× wall, "
                    f"{results[backends[1]][n][2] / results[backends[0]][n][2]:4.2f}× CPU"
                    if len(backends) > 1
                    else ""
                )
                print(f"{label:<12}{cells}{ratio}")
            for backend in backends:
                print(f"  {backend}: {results[backend][0][3]}")
                for label, _wall, _cpu, _summary, served in results[backend]:
                    if served is not None:  # the part of the work a client's CPU figure does not show
                        print(f"    {label}: the PostgreSQL server's own CPU {served:.2f} s")
            if "sqlite" in backends:
                print("store copy of the filled store:")
                print(f"  sqlite → sqlite      {copy_figures(sqlite_path, str(Path(folder) / 'copy.sqlite3'))}")
                if "postgresql" in backends:
                    print(f"  sqlite → postgresql  {copy_figures(sqlite_path, pg.url('copy_target'))}")
                    back = str(Path(folder) / "back.sqlite3")
                    print(f"  postgresql → sqlite  {copy_figures(pg.url('copy_target'), back)}")
    finally:
        if pg is not None:
            pg.stop()
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()

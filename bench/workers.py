"""Several workers on one PostgreSQL: a 5,000-feed poll cycle with 1 and 3 workers, and the outbox
drained by 3 senders under Telegram's 30 messages/s.

    python bench/workers.py [--feeds 5000] [--latency 0.05] [--concurrency 50] [--alerts 300] [--chats 100]

Starts a throw-away PostgreSQL server (tests/pgserver.py; TEST_POSTGRES_URL to use another) and
bench/poll.py's feed server (20 items a feed, 50 ms latency each, one item in 16 on topic) in its own
process, then measures, each on a fresh database:

  poll    one cycle of every feed — fetch, parse, match, identity, commit — by 1 worker (the baseline) and
          by 3 worker processes claiming feeds from one database (store/claims.py); seconds per cycle, the
          ratio, and the claim check: every feed committed once, none twice.
  outbox  ``--alerts`` instant alerts over ``--chats`` private chats, drained against the Bot API emulator
          (tgemu) by 1 sender (baseline), by 3 senders with the shared rate buckets (service/ratelimit.py),
          and by 3 senders with only their own per-process limiter (what the shared buckets prevent):
          messages a second overall and the most in any one-second window.
Each worker is a separate process (spawned), as ``bot.py run --role …`` would be.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
TOKEN = "777000:BENCH-workers-token"


def _bench_poll() -> Any:
    """bench/poll.py as a module (its feed server and feed bodies)."""
    spec = importlib.util.spec_from_file_location("bench_poll", REPO / "bench" / "poll.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- poll cycle --------------------------------------------------------------------------------------


def poll_worker(url: str, concurrency: int, name: str, start: Any, results: Any) -> None:
    """One worker process: claim due feeds in batches and poll them, until none is left."""
    from core.config import PollingConfig, load_config
    from core.workers import CpuPool
    from delivery.encoder import NoEncoder
    from rules import load_rules
    from service.pipeline import Pipeline
    from store import Store
    from store.claims import Worker
    from watchers import PollSettings, make_client

    ruleset = load_rules(load_config(str(REPO / "config.yaml")).rule_files)
    polling = PollingConfig(concurrency=concurrency, timeout=30, allow_private_urls=True)

    async def cycle() -> tuple[float, int, float]:
        pool = CpuPool("thread")
        store = Store.open(url)
        try:
            async with make_client(PollSettings.from_config(polling)) as client:
                pipeline = Pipeline(store, client, lambda: ruleset, polling, pool=pool, encoder=NoEncoder())
                start.wait()
                began = time.perf_counter()
                cpu = time.process_time()
                report = await pipeline.run_cycle(NOW, worker=Worker(name, lease=600))
                return time.perf_counter() - began, report.feeds_ok, time.process_time() - cpu
        finally:
            store.close()
            pool.close()

    results.put((name, *asyncio.run(cycle())))


def poll_cycle(url: str, base: str, feeds: int, workers: int, concurrency: int) -> tuple[float, int, int, float]:
    """(wall seconds from the common start to the last worker's end, feeds polled, feeds committed twice,
    the workers' CPU seconds)."""
    from core.config import FeedConfig
    from store import Store

    with Store.open(url) as store:
        store.sync_feeds([FeedConfig(f"{base}/feed/{n}", f"feed {n}", None, 600) for n in range(feeds)], NOW)
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=poll_worker, args=(url, concurrency, f"bench:{k}:w", start, results)) for k in range(workers)
    ]
    for p in procs:
        p.start()
    time.sleep(2.0)  # every worker imported the project and opened its store
    began = time.perf_counter()
    start.set()
    done = [results.get(timeout=1800) for _ in procs]
    wall = time.perf_counter() - began
    polled, cpu = sum(d[2] for d in done), sum(d[3] for d in done)
    for p in procs:
        p.join(30)
    with Store.open(url) as store:
        rows = store.conn.execute("SELECT COUNT(*) FROM feeds WHERE last_polled_at IS NULL OR initialised = 0")
        unpolled = int(rows.fetchone()[0])
        items = int(store.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    duplicates = polled - feeds + unpolled  # a feed committed by two workers counts twice in ``polled``
    assert items == feeds * 20, f"{items} items stored for {feeds} feeds of 20"
    return wall, polled, duplicates, cpu


# -- outbox ------------------------------------------------------------------------------------------


def send_worker(url: str, base_url: str, name: str, shared: bool, start: Any, results: Any) -> None:
    """One sender process: drain the instant alerts it can claim, through a Bot on the emulator."""
    from telegram.ext import AIORateLimiter, ExtBot

    from delivery.outbox import deliver_instant
    from delivery.sender import Sender
    from service.ratelimit import SharedRateLimiter
    from store import Store
    from store.claims import Worker

    async def drain() -> int:
        store = Store.open(url)
        limiter = SharedRateLimiter(store.take_token) if shared else AIORateLimiter(max_retries=0)
        bot: ExtBot[Any] = ExtBot(TOKEN, base_url=base_url, rate_limiter=limiter)
        sent = 0
        try:
            async with bot:
                start.wait()
                while True:
                    report = await deliver_instant(store, Sender(bot), lambda: datetime.now(UTC), worker=Worker(name))
                    sent += report.sent
                    left = store.conn.execute("SELECT COUNT(*) FROM outbox WHERE state != 'sent'").fetchone()[0]
                    if not left:
                        return sent
                    if not report.sent:
                        await asyncio.sleep(0.2)  # another sender holds the chats that are left
        finally:
            store.close()

    results.put((name, asyncio.run(drain())))


def drain_outbox(url: str, emu: Any, alerts: int, chats: int, senders: int, shared: bool) -> tuple[float, float, int]:
    """(seconds, messages a second, most messages in any one-second window) for ``alerts`` alerts."""
    from core.config import FeedConfig
    from core.models import Hit, Item, Match
    from store import ProcessedItem, Store

    instant = Match("military", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))
    per_chat = max(alerts // chats, 1)
    with Store.open(url) as store:
        store.sync_feeds([FeedConfig("https://news.example/rss", "News", "ru", 600)], NOW)
        feed = store.all_feeds()[0]
        for c in range(chats):
            emu.add_chat(10_000 + c, "private")
            store.upsert_subscription(10_000 + c, NOW, mode="instant", stories=False)
        items = [
            ProcessedItem(
                Item(feed.url, f"u{k}", f"КНДР {k}", "s", f"https://e.example/{k}", NOW, "ru"), (instant,), True
            )
            for k in range(per_chat)
        ]
        store.commit_poll(
            feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=items
        )
    before = len(emu.sent())
    ctx = multiprocessing.get_context("spawn")
    start, results = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=send_worker, args=(url, emu.base_url, f"bench:{k}:s", shared, start, results))
        for k in range(senders)
    ]
    for p in procs:
        p.start()
    time.sleep(2.0)
    began = time.perf_counter()
    start.set()
    for _ in procs:
        results.get(timeout=600)
    wall = time.perf_counter() - began
    for p in procs:
        p.join(30)
    stamps = sorted(m.date for m in emu.sent()[before:])
    assert len(stamps) == per_chat * chats, f"{len(stamps)} messages for {per_chat * chats} alerts"
    busiest, j = 0, 0
    for i, t in enumerate(stamps):
        while stamps[j] <= t - 1.0:
            j += 1
        busiest = max(busiest, i - j + 1)
    return wall, len(stamps) / max(stamps[-1] - stamps[0], 1e-9), busiest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=5000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--alerts", type=int, default=300)
    parser.add_argument("--chats", type=int, default=100)
    parser.add_argument("--skip-poll", action="store_true")
    args = parser.parse_args()

    from tests.pgserver import Databases, PgServer, find_bindir
    from tgemu import BotApiEmulator

    server = None
    admin = os.environ.get("TEST_POSTGRES_URL")
    if admin is None:
        bindir = find_bindir()
        if bindir is None:
            sys.exit("no PostgreSQL server binaries (initdb, pg_ctl); set TEST_POSTGRES_URL or install postgresql")
        server = PgServer(bindir).start()
        admin = server.url()
    databases = Databases(admin)
    bench_poll = _bench_poll()
    ports: Any = multiprocessing.Queue()
    feed_server = multiprocessing.Process(
        target=bench_poll.serve, args=(ports, args.feeds, args.latency, 16), daemon=True
    )
    feed_server.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=30)}"
        print(f"{os.cpu_count()} cores; PostgreSQL {admin.rsplit('@', 1)[-1]}; feed server {base}")
        if not args.skip_poll:
            print(
                f"poll: one cycle of {args.feeds} feeds × 20 items, {args.latency * 1000:.0f} ms latency, "
                f"concurrency {args.concurrency} a worker"
            )
            one = None
            for workers in (1, 3):
                url = databases.create()
                wall, polled, twice, cpu = poll_cycle(url, base, args.feeds, workers, args.concurrency)
                databases.drop(url)
                one = one or wall
                print(
                    f"  {workers} worker{'s' if workers > 1 else ' '} on PostgreSQL: {wall:6.2f} s a cycle "
                    f"({args.feeds / wall:5.0f} feeds/s; ratio to 1 worker {one / wall:4.2f}×); "
                    f"workers' CPU {cpu:6.1f} s; feeds polled {polled}, by two workers {twice}"
                )
        print(f"outbox: {args.alerts} instant alerts over {args.chats} private chats, Bot API emulator on 127.0.0.1")
        with BotApiEmulator(TOKEN) as emu:
            for senders, shared, label in (
                (1, True, "1 sender, shared buckets (baseline)"),
                (3, True, "3 senders, shared buckets"),
                (3, False, "3 senders, per-process limiter only"),
            ):
                url = databases.create()
                wall, rate, busiest = drain_outbox(url, emu, args.alerts, args.chats, senders, shared)
                databases.drop(url)
                print(f"  {label:<37} {wall:6.2f} s, {rate:5.1f} messages/s, busiest second {busiest:3d} (limit 30/s)")
    finally:
        feed_server.terminate()
        feed_server.join(5)
        databases.close()
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()

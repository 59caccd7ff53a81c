"""Responsiveness benchmark: how long ``/start`` waits for an answer while a poll cycle runs.

    python bench/responsive.py [--feeds 1000] [--latency 0.05] [--every 16] [--pools thread,process] [--before]

The real bot (service.app, python-telegram-bot over HTTP) talks to the Bot API emulator (tgemu) on
127.0.0.1; N feeds × 20 items are served from another process with added latency. While one cycle runs
(fetch, parse, match, commit every feed), a user sends ``/start`` every 100 ms and the time until the
bot's reply reaches the emulator is recorded. Configurations, each in the same run (``--pools``):

    before   feedparser, parsing and matching on the event loop (``--before``)
    thread   the fast parse path, parsing and matching in the thread pool (``polling.cpu_pool: thread``)
    process  parsing and matching in a process pool, rules kept in each worker (``cpu_pool: process``)

each with the garbage collector tuned after start-up as ``bot.py run`` does (``--gc default`` to compare).

Target (issue 16): p95 ≤ 250 ms while a 1,000-feed cycle runs.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from poll import serve  # the poll benchmark's feed server

import core.workers
import watchers.poll
from chat.limits import CommandLimits
from core.config import load_config
from core.workers import CpuPool
from service.app import build_application, post_init, post_shutdown, prepare, run_poll
from tgemu import BotApiEmulator
from watchers.parse import parse_feed

TOKEN = "777:BENCH-token"
ADMIN = 42
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


async def one_run(
    base: str, feeds: int, label: str, fast: bool, pool: CpuPool, folder: Path, freeze: bool = True
) -> None:
    with BotApiEmulator(TOKEN) as emu:
        emu.add_chat(ADMIN, "private")
        config = folder / f"{label}.yaml"
        lines = "".join(f"  - {{url: '{base}/feed/{n}', name: 'Feed {n}'}}\n" for n in range(feeds))
        config.write_text(
            f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{ADMIN}]\n"
            f"storage: {{path: '{folder / (label + '.sqlite3')}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
            f"polling: {{allow_private_urls: true, timeout: 30, concurrency: 50, cpu_pool: {pool.kind}}}\n"
            f"feeds:\n{lines}",
            encoding="utf-8",
        )
        state = prepare(load_config(config), NOW)
        assert state is not None
        state.clock = lambda: NOW
        # a /start every 100 ms for minutes outruns an admin's command budget (2 a second): one would be
        # refused and waited for until the timeout; the limiter is not what this measures
        state.limits = CommandLimits(admin_rate=100.0, admin_burst=1000.0)
        state.schedule_jobs = False
        app = build_application(state, TOKEN)
        await app.initialize()
        await post_init(app)
        await app.start()
        assert app.updater is not None and state.pipeline is not None
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
        core.workers._DEFAULTS[pool.kind] = pool  # the pool every Pipeline the bot builds uses
        if pool.kind == "process":  # the workers start before the clock, as after a bot's first cycle
            await asyncio.gather(*(pool.run_portable(os.getpid) for _ in range(pool.workers * 2)))
        if freeze:
            core.workers.tune_gc(state.rules)  # what bot.py run does after start-up
        setattr(watchers.poll, "parse_feed", functools.partial(parse_feed, fast=fast))  # noqa: B010
        latencies: list[float] = []
        try:
            emu.user_sends(ADMIN, ADMIN, "/start")  # warm up the handler path
            await asyncio.to_thread(emu.wait_for, ADMIN, 1, 30)
            started = time.perf_counter()
            cycle = asyncio.create_task(run_poll(app))
            while not cycle.done():
                count = len(emu.sent(ADMIN))
                sent = time.perf_counter()
                emu.user_sends(ADMIN, ADMIN, "/start")
                await asyncio.to_thread(emu.wait_for, ADMIN, count + 1, 60)
                latencies.append(time.perf_counter() - sent)
                await asyncio.sleep(0.1)
            await cycle
            seconds = time.perf_counter() - started
        finally:
            setattr(watchers.poll, "parse_feed", parse_feed)  # noqa: B010
            await app.updater.stop()
            await app.stop()
            await post_shutdown(app)
            await app.shutdown()
            gc.unfreeze()
            gc.set_threshold(700, 10, 10)  # CPython's defaults, for the next configuration
            core.workers._FROZEN_WITH.clear()
    ordered = sorted(latencies)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    print(
        f"{label:<7} cycle {seconds:6.2f} s; /start answered {len(latencies)} times: "
        f"p50 {statistics.median(latencies) * 1000:6.0f} ms, p95 {p95 * 1000:6.0f} ms, "
        f"max {ordered[-1] * 1000:6.0f} ms  (target p95 ≤ 250 ms)"
    )


async def run(base: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as folder:
        if args.before:
            await one_run(base, args.feeds, "before", False, CpuPool("inline"), Path(folder), freeze=False)
        for kind in args.pools.split(","):
            pool = CpuPool(kind)
            try:
                await one_run(base, args.feeds, kind, True, pool, Path(folder), freeze=args.gc == "tuned")
            finally:
                pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--every", type=int, default=1, help="one item in EVERY on topic (default: all; 16 ≈ 6 %%)")
    parser.add_argument("--pools", default="thread,process", help="CPU pool kinds to run, in order")
    parser.add_argument("--before", action="store_true", help="also the code before issue 16 (feedparser inline)")
    parser.add_argument("--gc", choices=["tuned", "default"], default="tuned")
    args = parser.parse_args()
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, args.feeds, args.latency, args.every), daemon=True)
    server.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=30)}"
        print(
            f"{args.feeds} feeds × 20 items (one in {args.every} on topic), {args.latency * 1000:.0f} ms latency "
            "each, concurrency 50"
        )
        asyncio.run(run(base, args))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()

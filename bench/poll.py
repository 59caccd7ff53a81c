"""Poll benchmark: one cycle over N feeds served from 127.0.0.1 with added latency.

    python bench/poll.py [--feeds 1000] [--latency 0.05] [--concurrency 50] [--naive-sample 100]
    python bench/poll.py --feeds 5000 --pipeline --every 16   # the bot's whole cycle, 6 % of items on topic

Runs, in one process against one server, the first cycle (200s, parsed) and the 304 cycle (nothing
parsed) for each configuration, wall and CPU seconds (this process plus any worker processes):

    before          feedparser, parsed on the event loop (the code before issue 16)
    fast, inline    the lxml fast path, still on the loop
    fast, threads   the fast path in the thread pool (what the bot runs)
    fast, processes the fast path in a process pool sized to the cores

beside the floors on the same bodies: ``feedparser.parse`` alone and the fast parser alone (one core,
no I/O), and a naive sequential ``feedparser.parse(url)`` loop over a sample, extrapolated to N.
The server runs in its own process so it does not share our GIL.
``--pipeline`` runs instead what the bot runs each cycle (service.pipeline.Pipeline.run_cycle: each feed
fetched, parsed and matched in the thread pool as its fetch completes, identity, stories, the SQLite
commit on the loop) into a fresh store file with the shipped rules, first cycle and 304 cycle, with
peak RSS. The story encoder is off there (``stories.encoder: off``): loaded it adds ~120 MiB and
~3 ms a matched item (``bench/cluster.py``).
Each cycle also reports the event loop's longest stall: a sampler task sleeps 10 ms over and over and
records how late it wakes (the longest stretch of the cycle without an await, + the 10 ms); with
``--pipeline``, also the loop thread's CPU time in the story-candidate look-ups (all, and the longest one),
a figure other processes' load barely moves.
Targets (issue 16): first cycle ≤ 5 s, 304 cycle ≤ 1 s for 1,000 feeds on 2 cores; ≤ 150 MB RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import multiprocessing
import os
import resource
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import feedparser
import psutil

import watchers.poll
from core.models import Feed
from core.workers import POOL_KINDS, CpuPool, PoolKind, freeze_heap, tune_gc
from watchers import PollSettings, make_client, poll_feeds
from watchers.fastparse import parse as fast_parse
from watchers.parse import _reencode, parse_feed

REPO = Path(__file__).resolve().parents[1]
WORDS = [
    "КНДР",
    "Россия",
    "военные",
    "переговоры",
    "Пхеньян",
    "делегация",
    "North",
    "Korea",
    "Russia",
    "troops",
    "Kursk",
    "북한",
    "러시아",
    "파병",
    "군사협력",
    "economy",
    "weather",
    "sport",
    "culture",
]


OFF_TOPIC = ["economy", "weather", "sport", "culture", "harvest", "festival", "markets", "football", "rain"]


def _timed(fn: Any, into: list[tuple[float, float]]) -> Any:
    """``fn`` recording each call's (CPU s of the calling thread, wall s) in ``into``."""

    def timed(*a: Any, **kw: Any) -> Any:
        cpu, wall = time.thread_time(), time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            into.append((time.thread_time() - cpu, time.perf_counter() - wall))

    return timed


def feed_body(n: int, items: int = 20, every: int = 1) -> bytes:
    """Feed ``n``'s body; with ``every`` > 1 only one item in ``every`` (across feeds) names the topic."""
    entries = []
    for i in range(items):
        vocabulary = WORDS if (n * items + i) % every == 0 else OFF_TOPIC
        words = " ".join(vocabulary[(n + i + k) % len(vocabulary)] for k in range(12))
        entries.append(
            f"<item><guid>feed{n}-item{i}</guid><title>Item {i} of feed {n}: {words}</title>"
            f"<link>https://news{n}.example/{i}</link><pubDate>Tue, 05 Nov 2024 10:{i:02d}:00 +0000</pubDate>"
            f"<description>&lt;p&gt;{words} {words} {words}&lt;/p&gt;</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Feed {n}</title>'
        f"<link>https://news{n}.example/</link><description>bench</description>{''.join(entries)}"
        "</channel></rss>"
    ).encode()


def serve(port_queue: Any, feeds: int, latency: float, every: int = 1) -> None:
    bodies = {f"/feed/{n}": feed_body(n, every=every) for n in range(feeds)}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            time.sleep(latency)
            body = bodies.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = f'"{self.path}"'
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("ETag", etag)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 1024  # must be set before listen(): a class attribute

    server = Server(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """CPU seconds of this process and its live children (a process pool's workers)."""
    me = psutil.Process()
    total: float = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            total += sum(child.cpu_times()[:2])
    return total


class GcPauses:
    """Garbage-collection pauses while active (``gc.callbacks``): count and worst pause per generation, and
    the thread that paid it (a collection runs in whichever thread allocates, holding the GIL)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[tuple[float, str]]] = {0: [], 1: [], 2: []}
        self._started: dict[int, float] = {}
        self.cpu: dict[int, list[float]] = {0: [], 1: [], 2: []}  # the same pauses in the thread's CPU time
        self._cpu: dict[int, float] = {}

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if phase == "start":
            self._started[generation] = time.perf_counter()
            self._cpu[generation] = time.thread_time()
        elif generation in self._started:
            took = time.perf_counter() - self._started.pop(generation)
            self.pauses[generation].append((took, threading.current_thread().name))
            self.cpu[generation].append(time.thread_time() - self._cpu.pop(generation))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    def summary(self) -> str:
        worst = max(self.pauses[2], default=(0.0, "-"))
        return (
            f"gc: gen-2 {len(self.pauses[2])} collections, {sum(t for t, _ in self.pauses[2]) * 1000:.0f} ms in all, "
            f"worst {worst[0] * 1000:.0f} ms ({worst[1]}; {max(self.cpu[2], default=0.0) * 1000:.0f} ms CPU); "
            f"gen-0/1 {len(self.pauses[0]) + len(self.pauses[1])} collections, worst "
            f"{max((t for g in (0, 1) for t, _ in self.pauses[g]), default=0.0) * 1000:.0f} ms "
            f"({max((t for g in (0, 1) for t in self.cpu[g]), default=0.0) * 1000:.0f} ms CPU)"
        )


class WorkerRss:
    """The process workers' RSS in all, at its peak (sampled every 0.5 s by a thread, not on the loop:
    walking /proc takes ~0.1 s)."""

    def __init__(self, pool: CpuPool | None) -> None:
        self.pool, self.peak = pool, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while self.pool is not None and not self._stop.wait(0.5):
            total = 0
            for pid in self.pool.worker_pids():
                with contextlib.suppress(psutil.Error):
                    total += psutil.Process(pid).memory_info().rss
            self.peak = max(self.peak, total / 2**20)

    def __enter__(self) -> WorkerRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        return f", process workers' RSS {self.peak:.0f} MB in all" if self.peak else ""


_SCHEDSTAT: list[int] = []  # an fd of the loop thread's /proc/thread-self/schedstat, opened once


def _schedstat() -> tuple[float, float]:
    """This thread's (CPU s, s waiting in the run queue for a CPU) from /proc (Linux; zeros elsewhere).
    Re-read through one fd (``pread``): opening the file each time cost ~0.8 ms on the loop."""
    try:
        if not _SCHEDSTAT:
            _SCHEDSTAT.append(os.open(f"/proc/self/task/{threading.get_native_id()}/schedstat", os.O_RDONLY))
        run, wait, _ = os.pread(_SCHEDSTAT[0], 128, 0).split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(run) / 1e9, int(wait) / 1e9


class LoopLag:
    """A task that sleeps ``tick`` seconds in a loop and keeps the worst lateness of its wake-ups.

    On a shared machine a late wake-up is often the loop thread waiting for a CPU (other processes'
    load), not our code: each stall is split by the loop thread's scheduler counters into CPU time,
    run-queue wait (the machine) and the rest (blocked: the GIL, a system call). ``worst_own`` is the
    longest stall less its run-queue wait, the figure the machine's load does not explain."""

    def __init__(self, tick: float = 0.01) -> None:
        self.tick, self.worst, self.wakes = tick, 0.0, 0
        self.split = (0.0, 0.0)  # the worst stall's (CPU, run-queue wait)
        self.worst_own = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            before, (cpu, queued) = time.perf_counter(), _schedstat()
            await asyncio.sleep(self.tick)
            late = time.perf_counter() - before - self.tick
            cpu2, queued2 = _schedstat()
            if late > self.worst:
                self.worst, self.split = late, (cpu2 - cpu, queued2 - queued)
            self.worst_own = max(self.worst_own, late - (queued2 - queued))
            self.wakes += 1

    def __enter__(self) -> LoopLag:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def summary(self) -> str:
        cpu, queued = self.split
        return (
            f"longest loop stall {self.worst * 1000:.0f} ms ({cpu * 1000:.0f} ms CPU, {queued * 1000:.0f} ms waiting "
            f"for a CPU); less the CPU wait: {self.worst_own * 1000:.0f} ms ({self.wakes} wake-ups)"
        )


async def one_config(args: argparse.Namespace, base: str, label: str, parser: str, kind: PoolKind) -> None:
    settings = PollSettings(timeout=30, concurrency=args.concurrency, allow_private_urls=True)
    feeds = [Feed(id=n, url=f"{base}/feed/{n}", name=f"feed {n}", lang=None, interval=600) for n in range(args.feeds)]
    pool = None if kind == "inline" else CpuPool(kind)
    if pool is not None:  # start the workers before the clock (a spawned process imports the project)
        await asyncio.gather(*(pool.run(os.getpid) for _ in range(pool.workers * 2)))
    setattr(watchers.poll, "parse_feed", functools.partial(parse_feed, fast=parser == "fast"))  # noqa: B010
    try:
        async with make_client(settings) as client:
            cpu, started = cpu_seconds(), time.perf_counter()
            with LoopLag() as lag1:
                first = await poll_feeds(client, feeds, settings, pool=pool)
            t1, c1 = time.perf_counter() - started, cpu_seconds() - cpu
            items = sum(len(p.items) for p in first)
            ok = sum(p.outcome == "ok" for p in first)
            revisited = [
                Feed(id=f.id, url=f.url, name=f.name, lang=None, interval=600, etag=p.etag)
                for f, p in zip(feeds, first, strict=True)
            ]
            cpu, started = cpu_seconds(), time.perf_counter()
            with LoopLag() as lag2:
                second = await poll_feeds(client, revisited, settings, pool=pool)
            t2, c2 = time.perf_counter() - started, cpu_seconds() - cpu
            not_modified = sum(p.outcome == "not_modified" for p in second)
    finally:
        setattr(watchers.poll, "parse_feed", parse_feed)  # noqa: B010
        if pool is not None:
            pool.close()
    print(
        f"{label:<17} first cycle {t1:6.2f} s wall {c1:6.2f} s CPU ({ok} ok, {items} items)   "
        f"304 cycle {t2:5.2f} s wall {c2:5.2f} s CPU ({not_modified} not modified, "
        f"{c2 / args.feeds * 1000:.2f} ms CPU a request)\n{'':<17} longest loop stall: first cycle "
        f"{lag1.worst * 1000:.0f} ms ({lag1.wakes} wake-ups), 304 cycle {lag2.worst * 1000:.0f} ms; "
        f"peak RSS so far {peak_rss_mb():.1f} MB"
    )


async def pipeline_cycles(args: argparse.Namespace, base: str) -> None:
    import tempfile
    from datetime import UTC, datetime, timedelta

    from core.config import FeedConfig, PollingConfig, load_config
    from delivery.encoder import NoEncoder
    from rules import load_rules
    from service.pipeline import Pipeline
    from store import Store

    ruleset = load_rules(load_config(str(REPO / "config.yaml")).rule_files)
    polling = PollingConfig(concurrency=args.concurrency, timeout=30, allow_private_urls=True)
    now = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    pool = CpuPool(args.pool)
    if args.pool == "process":  # start the workers before the clock, as the bot's first cycle would have
        await asyncio.gather(*(pool.run_portable(os.getpid) for _ in range(pool.workers * 2)))
    if args.gc == "tuned":  # what bot.py run does after start-up (service/app.py)
        print(f"gc tuned: {tune_gc(ruleset):,} objects frozen after start-up; thresholds {gc.get_threshold()}")
    elif args.gc == "freeze":
        print(f"gc.freeze: {freeze_heap():,} objects frozen after start-up")
    if args.gc_threshold:
        gc.set_threshold(args.gc_threshold, *gc.get_threshold()[1:])
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(Path(folder) / "bench.sqlite3", exclusive=True)  # as bot.py run opens it
        configs = [
            FeedConfig(url=f"{base}/feed/{n}", name=f"feed {n}", lang=None, interval=600) for n in range(args.feeds)
        ]
        store.sync_feeds(configs, now)
        calls: list[tuple[float, float]] = []  # (CPU s of the loop thread, wall s) per story_candidates call
        store.story_candidates = _timed(store.story_candidates, calls)  # type: ignore[method-assign]
        commits: list[tuple[float, float]] = []  # the same for each feed's commit (SQLite on the loop)
        store.commit_poll = _timed(store.commit_poll, commits)  # type: ignore[method-assign]
        try:
            async with make_client(PollSettings.from_config(polling)) as client:
                pipeline = Pipeline(store, client, lambda: ruleset, polling, pool=pool, encoder=NoEncoder())
                for label, at in (("first cycle", now), ("304 cycle", now + timedelta(hours=1))):
                    cpu, started = cpu_seconds(), time.perf_counter()
                    with LoopLag() as lag, GcPauses() as pauses, WorkerRss(pool) as workers:
                        report = await pipeline.run_cycle(at)
                    wall, used = time.perf_counter() - started, cpu_seconds() - cpu
                    print(
                        f"pipeline {label:<11} {wall:6.2f} s wall {used:6.2f} s CPU ({report.summary()}); "
                        f"peak RSS so far {peak_rss_mb():.1f} MB{workers.summary()}\n{'':<21}{lag.summary()}\n"
                        f"{'':<21}{pauses.summary()}"
                    )
                    if calls:  # CPU time of the loop thread: what the loop spends there whatever the machine's load
                        print(
                            f"{'':<21}story candidates (on the loop): {len(calls)} look-ups, "
                            f"{sum(c for c, _ in calls):.2f} s CPU in all, longest "
                            f"{max(c for c, _ in calls) * 1000:.0f} ms CPU "
                            f"({max(w for _, w in calls) * 1000:.0f} ms wall)"
                        )
                        calls.clear()
                    if commits:
                        print(
                            f"{'':<21}commits (on the loop): {len(commits)}, {sum(c for c, _ in commits):.2f} s CPU "
                            f"in all, longest {max(c for c, _ in commits) * 1000:.0f} ms CPU, "
                            f"{max(w for _, w in commits) * 1000:.0f} ms wall"
                        )
                        commits.clear()
        finally:
            store.close()
            pool.close()


def floors(args: argparse.Namespace) -> None:
    bodies = [_reencode(feed_body(n), "application/rss+xml; charset=utf-8") for n in range(args.feeds)]
    started = time.perf_counter()
    for body, content_type in bodies:
        feedparser.parse(body, response_headers={"content-type": content_type or ""})
    fp = time.perf_counter() - started
    started = time.perf_counter()
    for body, content_type in bodies:
        fast_parse(body, content_type)
    fast = time.perf_counter() - started
    started = time.perf_counter()
    for n, (body, content_type) in enumerate(bodies):
        parse_feed(body, feed_url=f"https://f.example/{n}", content_type=content_type)
    full = time.perf_counter() - started
    print(
        f"floors, one core, same {args.feeds} bodies: feedparser.parse alone {fp:5.2f} s "
        f"({fp / args.feeds * 1000:.2f} ms a feed); fast parser alone {fast:5.2f} s "
        f"({fast / args.feeds * 1000:.2f} ms); fast path + normalising to Items {full:5.2f} s "
        f"({full / args.feeds * 1000:.2f} ms)"
    )


async def run(args: argparse.Namespace, base: str) -> None:
    if args.pipeline:
        await pipeline_cycles(args, base)
        print(f"peak RSS:                  {peak_rss_mb():6.1f} MB  (target ≤ 150 MB)")
        return
    configs: list[tuple[str, str, PoolKind]] = [
        ("before (feedparser)", "feedparser", "inline"),
        ("fast, inline", "fast", "inline"),
        ("fast, threads", "fast", "thread"),
        ("fast, processes", "fast", "process"),
    ]
    for label, parser, kind in configs:
        if args.only is None or (kind == args.only and parser == "fast"):
            await one_config(args, base, label, parser, kind)
    print(f"peak RSS:                  {peak_rss_mb():6.1f} MB  (target ≤ 150 MB)")
    if args.no_floors:
        return
    floors(args)
    sample = min(args.naive_sample, args.feeds)
    started = time.perf_counter()
    for n in range(sample):
        feedparser.parse(f"{base}/feed/{n}")
    naive = (time.perf_counter() - started) * args.feeds / sample
    print(
        f"naive sequential feedparser.parse(url): {naive:6.2f} s for {args.feeds} (measured on {sample}, extrapolated)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--naive-sample", type=int, default=100)
    parser.add_argument("--only", choices=["inline", "thread", "process"], help="only this fast-path configuration")
    parser.add_argument("--pipeline", action="store_true", help="the bot's whole cycle into a store instead")
    parser.add_argument("--every", type=int, default=1, help="one item in EVERY on topic (default: all; 16 ≈ 6 %%)")
    parser.add_argument("--no-floors", action="store_true", help="skip the floors and the naive loop")
    parser.add_argument("--pool", choices=POOL_KINDS, default="thread", help="--pipeline: the CPU pool's kind")
    parser.add_argument(
        "--gc",
        choices=["tuned", "freeze", "default"],
        default="tuned",
        help="--pipeline: as bot.py run (tuned: frozen, gen-0 threshold 20,000), frozen only, or CPython's defaults",
    )
    parser.add_argument("--gc-threshold", type=int, help="--pipeline: gc generation-0 threshold (default 700)")
    parser.add_argument("--switch-interval", type=float, help="sys.setswitchinterval (s) for this run")
    args = parser.parse_args()
    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    ports: Any = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(ports, args.feeds, args.latency, args.every), daemon=True)
    server.start()
    try:
        base = f"http://127.0.0.1:{ports.get(timeout=30)}"
        print(
            f"{args.feeds} feeds × 20 items, {args.latency * 1000:.0f} ms latency each, "
            f"concurrency {args.concurrency}, server {base}"
        )
        asyncio.run(run(args, base))
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    main()

"""Trend chart benchmark: time to render one chart, memory over many renders, and the daily-counts query.

    python bench/trend.py [--renders 50] [--items 20000]

Prints: milliseconds per chart (10 rules over 14 days, then over 90 days; the first includes loading
fonts), the process's resident memory every 10 renders (it levels off once matplotlib's font and text
caches are warm: figures are freed), peak RSS, and the time of ``Store.daily_match_counts`` over 90 days
of a store holding N items (1–3 matches each).
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil

from core.config import FeedConfig
from delivery.trend import day_window, render_trend
from store import Store
from store.db import ts

RULES = [f"rule_{i}" for i in range(10)]
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
HITS = '[["DPRK", "title", 0, 4, "DPRK"], ["RUSSIA", "title", 9, 15, "Russia"]]'


def series(days: list[date], seed: int) -> dict[str, dict[date, int]]:
    rng = random.Random(seed)
    return {rule: {d: rng.randint(0, 3 * (10 - i)) for d in days} for i, rule in enumerate(RULES)}


def rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def bench_render(renders: int) -> None:
    tz = ZoneInfo("Europe/Moscow")
    start_rss = rss_mb()
    for n_days in (14, 90):
        _, days = day_window(NOW, tz, n_days)
        times, checkpoints = [], []
        for i in range(renders):
            data = series(days, i)
            start = time.perf_counter()
            png = render_trend(data, days, f"Matches per day, chart {i}")
            times.append((time.perf_counter() - start) * 1000)
            if (i + 1) % 10 == 0:
                checkpoints.append(f"{rss_mb():.0f}")
        print(
            f"{n_days:>2} days, 10 rules: {statistics.median(times):.0f} ms per chart (median of {renders}; "
            f"first {times[0]:.0f}, min {min(times):.0f}, max {max(times):.0f}); PNG {len(png) / 1000:.0f} kB"
        )
        print(f"   RSS every 10 renders: {' '.join(checkpoints)} MB")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"RSS before the first chart {start_rss:.0f} MB; peak RSS {peak:.0f} MB")


def bench_query(items: int) -> None:
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "bench.sqlite3")
        store.sync_feeds([FeedConfig("https://bench.example/rss", "Bench", "en", 600)], NOW)
        with store.transaction() as conn:
            for i in range(items):
                at = NOW - timedelta(seconds=rng.randint(0, 90 * 86400))
                conn.execute(
                    "INSERT INTO items (feed_id, uid, title, summary, seen_at) VALUES (1, ?, 't', 's', ?)",
                    (str(i), ts(at)),
                )
                for rule in rng.sample(RULES, rng.randint(1, 3)):
                    conn.execute(
                        "INSERT INTO matches (item_id, rule, priority, hits_json, created_at) VALUES (?,?,?,?,?)",
                        (
                            i + 1,
                            rule,
                            "digest",
                            '[["DPRK","title",0,4,"DPRK"],["RUSSIA","title",9,15,"Russia"]]',
                            ts(at),
                        ),
                    )
        rows = store.conn.execute("SELECT COUNT(*) FROM matches").fetchone()[0]
        tz = ZoneInfo("Asia/Seoul")
        since, _days = day_window(NOW, tz, 90)
        for by in ("rule", "entity"):
            start = time.perf_counter()
            counts = store.daily_match_counts(since, NOW, tz, by)
            took = (time.perf_counter() - start) * 1000
            print(f"daily_match_counts by {by}, 90 days, {rows} match rows: {took:.0f} ms ({len(counts)} series)")
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--renders", type=int, default=50)
    parser.add_argument("--items", type=int, default=20_000)
    args = parser.parse_args()
    bench_render(args.renders)
    bench_query(args.items)


if __name__ == "__main__":
    main()

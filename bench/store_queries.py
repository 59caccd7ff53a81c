"""Store benchmark: the queries a poll cycle, a digest and the chat commands run, at 5,000 and 500,000
items (two matches an item: 1 M match rows at 500,000), before and after issue 16's indexes.

    python bench/store_queries.py [--items 500000] [--small 5000] [--repeat 5]

"before" is the same file with the v2 indexes dropped and the queries as they were written before
(``GROUP BY rule``, ``ORDER BY i.id``); "after" is the current store. Each figure is the median of
``--repeat`` runs. A query whose cost stays flat from 5,000 to 500,000 items is searched through an
index (tests/test_store_plans.py checks the plans). Items arrive at 500 a day in both stores (5,000 items
are 10 days, 500,000 are 1,000 days), so a windowed query (/stats, /trend, the back-test) has the same
rows in its window in both and should cost the same: what the window holds, not what the store holds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from store import Store
from store.db import ts

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FEEDS = 1000
PER_DAY = 500  # items a day: a bigger store is an older one, so a day's window holds the same in both
TZ = ZoneInfo("Europe/Moscow")
OLD_SQL = (
    (
        "SELECT rule || '', COUNT(*) FROM matches WHERE created_at >= ? GROUP BY 1",
        "SELECT rule, COUNT(*) FROM matches WHERE created_at >= ? GROUP BY rule",
    ),
    ("ORDER BY +i.id", "ORDER BY i.id"),
)


class OldQueries:
    """The connection, with today's query texts turned back into the ones before issue 16."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    def execute(self, sql: str, *args: Any) -> Any:
        for new, old in OLD_SQL:
            sql = sql.replace(new, old)
        return self._conn.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def build(path: Path, items: int) -> None:
    store = Store.open(path)
    conn = store.conn
    now = ts(NOW)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO feeds (id, url, name, interval, created_at, next_poll_at, initialised) VALUES (?,?,?,?,?,?,1)",
        [(n + 1, f"https://feed{n}.example/rss", f"Feed {n}", 600, now, now) for n in range(FEEDS)],
    )
    conn.execute(
        "INSERT INTO subscriptions (id, chat_id, mode, created_at, updated_at) VALUES (1, '100', 'both', ?, ?)",
        (now, now),
    )
    step = timedelta(days=1) / PER_DAY
    hits = json.dumps([["DPRK", "title", 0, 4, "КНДР"], ["RUSSIA", "title", 7, 13, "Россия"]], ensure_ascii=False)
    batch: list[tuple[Any, ...]] = []
    matches: list[tuple[Any, ...]] = []
    outbox: list[tuple[Any, ...]] = []
    for i in range(1, items + 1):
        seen = ts(NOW - step * (items - i))
        batch.append((i, i % FEEDS + 1, f"uid-{i}", f"КНДР и Россия {i}", "summary text", seen, seen))
        matches.append((i, f"rule{i % 5}", "instant", hits, seen))
        matches.append((i, f"rule{(i + 1) % 5}", "digest", hits, seen))
        if i > items - items // 10:  # the last tenth went to the subscriber; the last 200 still pending
            outbox.append((1, i, "digest", '["rule0"]', "pending" if i > items - 200 else "sent", seen))
        if len(batch) >= 50_000:
            _flush(conn, batch, matches, outbox)
    _flush(conn, batch, matches, outbox)
    conn.execute("COMMIT")
    store.close()


def _flush(conn: Any, batch: list[Any], matches: list[Any], outbox: list[Any]) -> None:
    conn.executemany(
        "INSERT INTO items (id, feed_id, uid, title, summary, published, seen_at) VALUES (?,?,?,?,?,?,?)", batch
    )
    conn.executemany("INSERT INTO matches (item_id, rule, priority, hits_json, created_at) VALUES (?,?,?,?,?)", matches)
    conn.executemany(
        "INSERT INTO outbox (subscription_id, item_id, kind, rules_json, state, created_at) VALUES (?,?,?,?,?,?)",
        outbox,
    )
    batch.clear()
    matches.clear()
    outbox.clear()


QUERIES: list[tuple[str, Callable[[Store], object]]] = [
    ("cycle: unseen uids (20 of a feed)", lambda s: s.unseen_uids(7, [f"uid-{n}" for n in range(6, 26)])),
    ("cycle: due feeds", lambda s: s.due_feeds(NOW)),
    ("instant: pending alerts", lambda s: s.pending_instant(NOW)),
    ("digest: entries of a subscription", lambda s: s.digest_entries(1, NOW)),
    ("digest: retry at", lambda s: s.digest_retry_at(1)),
    ("/stats: match counts, 1 day", lambda s: s.match_counts(NOW - timedelta(days=1))),
    ("/trend by rule, 7 days", lambda s: s.daily_match_counts(NOW - timedelta(days=7), NOW, TZ)),
    ("/trend by entity, 7 days", lambda s: s.daily_match_counts(NOW - timedelta(days=7), NOW, TZ, by="entity")),
    ("rule back-test: recent items, 1 day", lambda s: s.recent_items(NOW - timedelta(days=1))),
]


def medians(path: Path, repeat: int, *, before: bool) -> dict[str, float]:
    store = Store.open(path)
    if before:
        store.conn.execute("DROP INDEX IF EXISTS matches_created_rule")
        store.conn.execute("DROP INDEX IF EXISTS outbox_created")
        store.conn = OldQueries(store.conn)
    out = {}
    for name, call in QUERIES:
        call(store)  # warm the page cache
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            call(store)
            times.append(time.perf_counter() - started)
        out[name] = statistics.median(times)
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=500_000)
    parser.add_argument("--small", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        small, big = Path(folder) / "small.sqlite3", Path(folder) / "big.sqlite3"
        started = time.perf_counter()
        build(small, args.small)
        build(big, args.items)
        print(
            f"built {args.small:,} and {args.items:,} items (2 matches each) in {time.perf_counter() - started:.0f} s"
        )
        after_small = medians(small, args.repeat, before=False)
        after_big = medians(big, args.repeat, before=False)
        before_big = medians(big, args.repeat, before=True)  # drops the indexes: last
    print(f"{'query (median ms)':<40} {args.small:>9,} after {args.items:>9,} before {args.items:>9,} after")
    for name, _ in QUERIES:
        print(
            f"{name:<40} {after_small[name] * 1000:15.2f} {before_big[name] * 1000:16.2f} "
            f"{after_big[name] * 1000:15.2f}"
        )


if __name__ == "__main__":
    main()

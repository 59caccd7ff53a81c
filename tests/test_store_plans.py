"""Store queries stay flat as the store grows: every statement a poll cycle, a digest and the chat commands
run is searched through an index, never a full scan of items, matches or outbox.

Each Store method is run against a real SQLite file while a trace callback records the statements it
executes (with their values bound); each recorded statement is then put through EXPLAIN QUERY PLAN. A
timing test would flake under load and pass on a small store; the plan is what decides how a query costs
at 500,000 items (bench/store_queries.py measures that).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from core.config import FeedConfig
from core.models import Hit, Item, Match
from store import ProcessedItem, Store

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
URL = "https://news.example/rss"
MATCH = Match("military", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))
BIG_TABLES = ("items", "matches", "outbox")
# "SCAN items", "SCAN m" (an alias), "SCAN o USING COVERING INDEX x" (still every row): all full scans.
_SCAN = re.compile(r"^SCAN (\w+)")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "bot.sqlite3")
    s.sync_feeds([FeedConfig(URL, "News", "ru", 600)], NOW)
    s.upsert_subscription("100", NOW, mode="both")
    feed = s.feed_by_url(URL)
    assert feed is not None
    items = [
        ProcessedItem(Item(URL, f"u{n}", "КНДР", "s", f"https://news.example/{n}", NOW, "ru", "News"), (MATCH,), True)
        for n in range(20)
    ]
    s.commit_poll(feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=items)
    yield s
    s.close()


def _statements(store: Store, call: Callable[[Store], object]) -> list[str]:
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        call(store)
    finally:
        store.conn.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT", "WITH"))]


def _full_scans(conn: sqlite3.Connection, sql: str) -> list[str]:
    aliases = {t: t for t in BIG_TABLES}
    for table, alias in re.findall(r"\b(items|matches|outbox)\s+(?:AS\s+)?([a-z])\b", sql):
        aliases[alias] = table
    plan = conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
    return [row[3] for row in plan if (m := _SCAN.match(row[3])) and m.group(1) in aliases]


def _first_feed(store: Store) -> Any:
    feed = store.feed_by_url(URL)
    assert feed is not None
    return feed


def _sub_id(store: Store) -> int:
    sub = store.subscription("100")
    assert sub is not None
    return sub.id


TZ = ZoneInfo("Europe/Moscow")
QUERIES: list[tuple[str, Callable[[Store], object]]] = [
    ("cycle: unseen uids", lambda s: s.unseen_uids(_first_feed(s).id, ["u1", "new"])),
    ("cycle: due feeds", lambda s: s.due_feeds(NOW)),
    (
        "cycle: commit a poll",
        lambda s: s.commit_poll(
            _first_feed(s).id,
            NOW,
            ok=True,
            etag=None,
            last_modified=None,
            error=None,
            next_poll_at=NOW,
            items=[ProcessedItem(Item(URL, "fresh", "КНДР", "s", None, NOW, "ru", "News"), (MATCH,), True)],
        ),
    ),
    ("instant: pending alerts", lambda s: s.pending_instant(NOW)),
    ("instant: mark sent", lambda s: s.mark_sent([1, 2], NOW)),
    ("instant: mark retry", lambda s: s.mark_retry(1, NOW, NOW, "x")),
    ("digest: entries", lambda s: s.digest_entries(_sub_id(s), NOW)),
    ("digest: retry at", lambda s: s.digest_retry_at(_sub_id(s))),
    ("digest: complete", lambda s: s.complete_digest(_sub_id(s), [3, 4], NOW)),
    ("/stats: match counts", lambda s: s.match_counts(NOW - timedelta(days=1))),
    ("/trend by rule", lambda s: s.daily_match_counts(NOW - timedelta(days=7), NOW, TZ)),
    ("/trend by entity", lambda s: s.daily_match_counts(NOW - timedelta(days=7), NOW, TZ, by="entity")),
    ("/trend named", lambda s: s.daily_match_counts(NOW - timedelta(days=7), NOW, TZ, names=["military"])),
    ("rule back-test: recent items", lambda s: s.recent_items(NOW - timedelta(days=2))),
    ("daily prune", lambda s: s.prune(NOW + timedelta(days=90))),
]


@pytest.mark.parametrize(("name", "call"), QUERIES, ids=[q[0] for q in QUERIES])
def test_query_uses_an_index_not_a_full_scan(store: Store, name: str, call: Callable[[Store], object]) -> None:
    statements = _statements(store, call)
    assert statements, f"{name}: ran no statement (the trace saw nothing)"
    scans = {sql: found for sql in statements if (found := _full_scans(store.conn, sql))}
    assert not scans, f"{name}: full scans of a growing table:\n" + "\n".join(f"{v}  ←  {k}" for k, v in scans.items())


def test_the_plan_check_sees_a_full_scan(store: Store) -> None:
    # the check itself can fail: a query on an unindexed column is reported
    assert _full_scans(store.conn, "SELECT COUNT(*) FROM items WHERE title = 'x'")

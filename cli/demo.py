"""``bot.py demo``: the main job on bundled example feeds, printing what would be sent to Telegram.

The example feeds (``examples/feeds``: Russian RSS holding the canonical article, English Atom, Korean
RSS, with near misses around them) are served by a local HTTP server on 127.0.0.1 and go through the
same code as real feeds: watchers → store (a fresh SQLite file in a temporary folder) → rules → outbox.
A demo subscription receives the instant alerts; they are printed exactly as they would be sent
(Telegram HTML), followed by the other items and why they did not alert.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections import Counter
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TextIO

from cli.feedserver import FeedFileServer
from core.config import BacklogPolicy, FeedConfig, PollingConfig
from delivery.render import render_alert
from delivery.stories import source_label, sources_line
from rules import RuleSet, load_rules
from service.pipeline import CycleReport, Pipeline
from store import OutboxEntry, Store
from watchers import PollSettings, make_client

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "feeds"
DEMO_FEEDS = (
    ("ru-politics.xml", "Пример: политика (RU)", "ru"),
    ("en-asia.atom", "Example Wire — Asia (EN)", "en"),
    ("ko-northkorea.xml", "예시 뉴스 — 북한 (KO)", "ko"),
)
DEMO_CHAT = "demo"


def demo_polling() -> PollingConfig:
    # Local server on 127.0.0.1, and the example items are old: deliver the whole first poll.
    return PollingConfig(allow_private_urls=True, backlog=BacklogPolicy(max_items=1000, max_age=None))


async def demo_cycle(server_url: str, store: Store, ruleset: RuleSet, now: datetime) -> CycleReport:
    feeds = [
        FeedConfig(url=f"{server_url}/{name}", name=title, lang=lang, interval=900) for name, title, lang in DEMO_FEEDS
    ]
    store.sync_feeds(feeds, now)
    store.upsert_subscription(DEMO_CHAT, now, mode="both", chat_title="Demo chat")
    polling = demo_polling()
    report = CycleReport()
    async with make_client(PollSettings.from_config(polling)) as client:
        pipeline = Pipeline(store, client, lambda: ruleset, polling)
        # one feed at a time, in the order above: the running bot commits each feed as its fetch completes,
        # so which outlet's report of a story is alerted first (and which are "also:") follows the network;
        # the demo shows the same output every time (the Russian canonical article leads its story)
        for config in feeds:
            feed = store.feed_by_url(config.url)
            if feed is not None:
                _add(report, await pipeline.run_cycle(now, feeds=[feed]))
    return report


def _add(total: CycleReport, part: CycleReport) -> None:
    """Fold one feed's cycle report into the demo's total."""
    for f in fields(CycleReport):
        mine, theirs = getattr(total, f.name), getattr(part, f.name)
        if isinstance(mine, Counter):
            mine.update(theirs)
        elif isinstance(mine, list):
            mine.extend(theirs)
        else:
            setattr(total, f.name, mine + theirs)


def run_demo(*, show_digest: bool = True, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    ruleset = load_rules(sorted((REPO / "rules").glob("*.yaml")))
    now = datetime.now(UTC)
    with FeedFileServer(EXAMPLES) as server, tempfile.TemporaryDirectory(prefix="monitor-demo-") as tmp:
        store = Store.open(Path(tmp) / "demo.sqlite3", exclusive=True)
        try:
            report = asyncio.run(demo_cycle(server.url, store, ruleset, now))
            alerts = store.pending_instant(now, limit=1000)
            subscription = store.subscription(DEMO_CHAT)
            assert subscription is not None
            alerted = {e.item.key for e in alerts}
            digest_only = [e for e in store.digest_entries(subscription.id, now) if e.item.key not in alerted]
            held = {e.item.key for e in digest_only}
            quiet = [i for i in store.recent_items(now - timedelta(days=1)) if i.key not in alerted | held]
        finally:
            store.close()
    w = out.write
    w(
        f"Demo: {len(DEMO_FEEDS)} bundled feeds served from {server.url} (127.0.0.1), rules: "
        f"{', '.join(r.name for r in ruleset.rules)}\n"
    )
    w(f"Cycle: {report.summary()}\n")
    if report.errors:
        for url, error in report.errors:
            w(f"  feed error: {url}: {error}\n")
    stories: dict[int | None, list[OutboxEntry]] = {}  # one alert per story; the others are edited in
    for entry in alerts:
        stories.setdefault(entry.story_id if entry.story_id is not None else -entry.id, []).append(entry)
    w(f"\n=== {len(stories)} instant alert(s) that would be sent to chat '{DEMO_CHAT}' (parse_mode=HTML) ===\n")
    for first, *later in stories.values():
        w("\n--- sendMessage ---\n")
        w(render_alert(first.item, first.matches) + "\n")
        if later:
            w("--- editMessageText: the same story from other outlets ---\n")
            w(sources_line([source_label(e) for e in (first, *later)]) + "\n")
    if show_digest:
        w(f"\n=== {len(digest_only)} item(s) matched digest-priority rules only (held for the daily digest) ===\n")
        for entry in digest_only:
            w(f"  • {entry.item.title} — {'; '.join(m.rule + ': ' + m.why_text() for m in entry.matches)}\n")
    w(f"\n=== {len(quiet)} item(s) did not match any rule (not sent) ===\n")
    for item in quiet:
        w(f"  · [{item.lang or '?'}] {item.title}\n")
    return 1 if report.feeds_failed else 0

"""Identity benchmark: what deciding an item's identity costs per poll, beside the old uid check.

    python bench/identity.py [--stored 100000] [--feeds 20] [--items 50] [--rounds 200]

A real SQLite store holding ``--stored`` items over ``--feeds`` feeds; one feed's fetch of ``--items``
entries (half stored already, a quarter edited, a quarter new) is checked ``--rounds`` times by the old
path (``Store.unseen_uids``) and the new one (``Store.known_items`` + ``core.identity.decide``). Also the
per-entry cost of the keys (``entry_keys``) beside the old uid (``legacy_uid``), and, when the real
labelled set is present (``../shared/data/real_dev.jsonl``), how many of its real links the canonical
link merges (each merge printed: they should all be one article under two spellings).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import identity
from core.config import FeedConfig
from core.identity import canonical_link, entry_keys, legacy_uid
from core.models import Item
from store import ProcessedItem, Store

NOW = datetime(2026, 5, 1, tzinfo=UTC)
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_dev.jsonl"


def entry(feed: int, n: int, title: str | None = None) -> Item:
    link = f"https://site{feed}.example/news/{n}?utm_source=rss&at_campaign={n % 7}"
    title = title or f"Story {n} of feed {feed}: officials meet in Pyongyang"
    keys = entry_keys(f"urn:{feed}:{n}", link, title, "Summary text.")
    return Item(f"f{feed}", keys.guid or "", title, "Summary text.", link, NOW, "en", "F", keys)


def build(path: Path, feeds: int, stored: int) -> Store:
    store = Store.open(path)
    store.sync_feeds([FeedConfig(f"https://site{f}.example/rss", f"F{f}", "en", 600) for f in range(feeds)], NOW)
    per_feed = stored // feeds
    for f in range(feeds):
        feed = store.all_feeds()[f]
        batch = [ProcessedItem(entry(f, n), (), False) for n in range(per_feed)]
        store.commit_poll(
            feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=batch
        )
    return store


def timed(rounds: int, fn: object) -> float:
    assert callable(fn)
    started = time.perf_counter()
    for _ in range(rounds):
        fn()
    return (time.perf_counter() - started) / rounds


def real_links() -> None:
    if not REAL.exists():
        print("real set: not present, skipped")
        return
    rows = [json.loads(line) for line in REAL.open(encoding="utf-8")]
    old: dict[str, set[str]] = defaultdict(set)
    new: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        link = row.get("link") or ""
        old[legacy_uid("", link, "", "")].add(link)
        new[canonical_link(link)].add(link)
    merged = [sorted(v) for v in new.values() if len(v) > 1]
    print(
        f"real set: {len(rows)} links; spellings merged into one: old rule {sum(len(v) > 1 for v in old.values())}, "
        f"canonical link {len(merged)}"
    )
    for group in merged:
        print("  merged:", " | ".join(group))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()

    sample = [entry(0, n) for n in range(5000)]
    # the old parser canonicalised every link, whatever the guid: its uid of the link is that cost
    per_old = timed(20, lambda: [legacy_uid("", i.link or "", i.title, i.summary) for i in sample]) / len(sample)
    per_new = timed(20, lambda: [entry_keys(i.uid, i.link or "", i.title, i.summary) for i in sample]) / len(sample)
    print(f"per entry: old uid {per_old * 1e6:.1f} µs, identity keys {per_new * 1e6:.1f} µs ({per_new / per_old:.1f}×)")

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        store = build(Path(tmp) / "bench.sqlite3", args.feeds, args.stored)
        print(f"store: {args.stored} items over {args.feeds} feeds, built in {time.perf_counter() - started:.1f} s")
        feed = store.all_feeds()[0]
        q = args.items // 4
        fetch = [entry(0, n) for n in range(2 * q)]  # stored, unchanged
        fetch += [entry(0, n, f"Edited story {n}: officials met in Pyongyang") for n in range(2 * q, 3 * q)]
        fetch += [entry(0, 10_000_000 + n) for n in range(args.items - 3 * q)]  # new
        uids = [i.uid for i in fetch]
        before = timed(args.rounds, lambda: store.unseen_uids(feed.id, uids))

        def decide() -> identity.FeedDecisions:
            known = store.known_items(feed.id, identity.lookup(fetch))
            return identity.decide(feed.id, fetch, known, guids_unstable=False)

        after = timed(args.rounds, decide)
        kinds = {k: len(decide().of(k)) for k in ("new", "seen", "update", "source")}
        print(
            f"per poll of {args.items} entries: old unseen check {before * 1e3:.2f} ms, "
            f"identity (look-up + decide) {after * 1e3:.2f} ms ({after / before:.1f}×); decided {kinds}"
        )
        store.close()
    real_links()


if __name__ == "__main__":
    main()

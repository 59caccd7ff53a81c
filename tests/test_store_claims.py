"""Claims on both backends (test ids say which): two Store objects are two connections, as two workers.

A feed, a chat, an in-flight entry and a day's digest belong to one worker at a time; an expired claim
(a dead worker) or one left by this worker's previous life is taken over; the shared rate bucket never
gives more tokens than its rate allows to all takers together. The rules are the same on both; on SQLite, where
one process runs at a time (the store lock), ``forget_claims`` at start takes a killed process's claims.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import FeedConfig
from core.models import Hit, Item, Match
from store import ProcessedItem, Store

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
A, B = "host-a:100:aaaaaa", "host-b:200:bbbbbb"
LEASE = 60.0
INSTANT = Match("military", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))


def feeds(n: int) -> list[FeedConfig]:
    return [FeedConfig(f"https://news.example/{k}.xml", f"News {k}", "ru", 600) for k in range(n)]


@pytest.fixture
def two(store_target: Path | str) -> Iterator[tuple[Store, Store]]:
    """Two workers' connections to one store, with 20 feeds and three subscribed chats."""
    first = Store.open(store_target)
    first.sync_feeds(feeds(20), NOW)
    for chat in (101, 102, 103):
        first.upsert_subscription(chat, NOW, mode="both")
    second = Store.open(store_target)
    yield first, second
    second.close()
    first.close()


def queue_alerts(store: Store, n: int = 1) -> list[int]:
    """``n`` matched items from the first feed: one instant and one digest row per chat each."""
    feed = store.all_feeds()[0]
    items = [
        ProcessedItem(
            Item(feed.url, f"u{k}", f"КНДР {k}", "s", f"https://news.example/a{k}", NOW, "ru", feed.name),
            (INSTANT,),
            True,
        )
        for k in range(n)
    ]
    result = store.commit_poll(
        feed.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW, items=items
    )
    return list(result.instant_outbox_ids)


def test_a_due_feed_is_claimed_by_one_worker_only(two: tuple[Store, Store]) -> None:
    a, b = two
    got_a = a.claim_due_feeds(A, NOW, LEASE, limit=12)
    got_b = b.claim_due_feeds(B, NOW, LEASE, limit=100)
    assert len(got_a) == 12 and len(got_b) == 8
    assert not {f.id for f in got_a} & {f.id for f in got_b}, "no feed is polled by both"
    assert a.claim_due_feeds(A, NOW, LEASE, 100) == [] and b.claim_due_feeds(B, NOW, LEASE, 100) == []
    # the poll's commit clears the claim and sets next_poll_at: not due, not claimed
    polled = got_a[0]
    a.commit_poll(
        polled.id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW + timedelta(minutes=10)
    )
    assert polled.url not in b.feed_claims()
    assert b.claim_due_feeds(B, NOW + timedelta(seconds=LEASE + 1), LEASE, 100) != []
    assert polled.id not in {f.id for f in b.claim_due_feeds(B, NOW + timedelta(minutes=5), LEASE, 100)}


def test_a_dead_workers_feed_claims_are_taken_over_after_the_lease(two: tuple[Store, Store]) -> None:
    a, b = two
    claimed = {f.id for f in a.claim_due_feeds(A, NOW, LEASE, 100)}
    assert b.claim_due_feeds(B, NOW + timedelta(seconds=LEASE - 1), LEASE, 100) == [], "A is alive"
    later = {f.id for f in b.claim_due_feeds(B, NOW + timedelta(seconds=LEASE + 1), LEASE, 100)}
    assert later == claimed and len(later) == 20


def test_a_previous_life_of_the_same_host_and_pid_is_taken_over_at_once(two: tuple[Store, Store]) -> None:
    a, b = two
    a.claim_due_feeds("host-a:100:old111", NOW, LEASE, 100)
    assert b.claim_due_feeds("host-a:100:new222", NOW, LEASE, 100) != [], "pid 100 on host-a is this process now"
    assert a.claim_due_feeds("host-a:101:other3", NOW, LEASE, 100) == [], "another pid: a live process"


def test_postgresql_concurrent_claimers_split_the_feeds_without_overlap(
    store_target: Path | str,
) -> None:
    if isinstance(store_target, Path):
        pytest.skip("SQLite serialises its one process's claims; this is the SKIP LOCKED case")
    with Store.open(store_target) as first:
        first.sync_feeds(feeds(300), NOW)
    taken: dict[str, list[int]] = {}

    def worker(name: str) -> None:
        with Store.open(store_target) as s:
            mine = taken.setdefault(name, [])
            while batch := s.claim_due_feeds(name, NOW, LEASE, 7):
                mine.extend(f.id for f in batch)

    threads = [threading.Thread(target=worker, args=(f"h:{k}:x",)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everyone = [feed for ids in taken.values() for feed in ids]
    assert len(everyone) == 300 and len(set(everyone)) == 300, "every feed claimed exactly once"
    assert all(ids for ids in taken.values()), f"each worker got a share: { {k: len(v) for k, v in taken.items()} }"


def test_an_outbox_entry_goes_in_flight_for_one_worker_only(two: tuple[Store, Store]) -> None:
    a, b = two
    ids = queue_alerts(a, 2)
    assert a.begin_send(ids[:1], NOW, worker=A, lease=LEASE) == ids[:1]
    assert b.begin_send(ids[:2], NOW, worker=B, lease=LEASE) == ids[1:2], "B may send only what A did not take"
    assert a.outbox_state(ids[0])[0] == "in_flight"


def test_resolve_in_flight_leaves_a_live_workers_sends_alone(two: tuple[Store, Store]) -> None:
    a, b = two
    ids = queue_alerts(a, 1)
    a.begin_send(ids, NOW, worker=A, lease=LEASE)
    resent, uncertain = b.resolve_in_flight(B, NOW + timedelta(seconds=1))
    assert (resent, uncertain) == ([], []), "A's send may still be answered: not B's to resolve"
    assert b.outbox_state(ids[0])[0] == "in_flight"
    # A died (its lease expired): each entry is maybe sent, so resent once
    resent, uncertain = b.resolve_in_flight(B, NOW + timedelta(seconds=LEASE + 1))
    assert (resent, uncertain) == (ids, [])
    state, attempts, unconfirmed, _, _ = b.outbox_state(ids[0])
    assert (state, attempts, unconfirmed) == ("pending", 1, 1)
    # the resend dies in flight too: uncertain, never sent a third time (the existing bound)
    b.begin_send(ids, NOW, worker=B, lease=LEASE)
    assert a.resolve_in_flight("host-b:200:reborn", NOW + timedelta(seconds=2)) == ([], ids), "B's next life"


def test_a_chat_is_sent_by_one_sender_at_a_time(two: tuple[Store, Store]) -> None:
    a, b = two
    queue_alerts(a, 2)
    mine = a.claim_chats(A, NOW, LEASE)
    assert len(mine) == 3
    assert b.claim_chats(B, NOW, LEASE) == [], "A holds every chat"
    assert b.pending_instant(NOW, 100, subscriptions=[]) == []
    a.release_chats(A)
    theirs = b.claim_chats(B, NOW, LEASE)
    assert theirs == mine
    assert {e.subscription_id for e in b.pending_instant(NOW, 100, subscriptions=theirs)} == set(theirs)


def test_a_digest_is_claimed_once_per_subscription_per_day(two: tuple[Store, Store]) -> None:
    a, b = two
    sub = a.subscriptions()[0].id
    assert a.claim_digest(sub, "2026-03-01", A, NOW, LEASE)
    assert not b.claim_digest(sub, "2026-03-01", B, NOW, LEASE), "A is sending it"
    a.finish_digest(sub, "2026-03-01", A, done=True, now=NOW)
    later = NOW + timedelta(seconds=LEASE + 1)
    assert not b.claim_digest(sub, "2026-03-01", B, later, LEASE), "a sent digest is never claimed again"
    assert b.claim_digest(sub, "2026-03-02", B, later, LEASE), "the next day's is new"
    # a worker that fails releases its claim: the digest is tried again, by anyone
    b.finish_digest(sub, "2026-03-02", B, done=False, now=later)
    assert a.claim_digest(sub, "2026-03-02", A, later + timedelta(seconds=1), LEASE)


def test_forget_claims_frees_everything_a_killed_process_held(two: tuple[Store, Store]) -> None:
    a, b = two
    ids = queue_alerts(a, 1)
    a.claim_due_feeds(A, NOW, LEASE, 100)
    a.claim_chats(A, NOW, LEASE)
    a.begin_send(ids, NOW, worker=A, lease=LEASE)
    b.forget_claims()  # the one SQLite process at its start (it holds the store lock)
    assert len(b.claim_due_feeds(B, NOW, LEASE, 100)) == 20
    assert b.resolve_in_flight(B, NOW) == (ids, [])
    assert len(b.claim_chats(B, NOW, LEASE)) == 3, "the chats A held, pending again"


def test_a_dead_senders_digest_claim_is_taken_over_after_the_lease(two: tuple[Store, Store]) -> None:
    a, b = two
    sub = a.subscriptions()[1].id
    assert a.claim_digest(sub, "2026-03-01", A, NOW, LEASE)
    assert b.claim_digest(sub, "2026-03-01", B, NOW + timedelta(seconds=LEASE + 1), LEASE)


def test_the_shared_rate_bucket_holds_for_all_takers_together(two: tuple[Store, Store]) -> None:
    a, b = two
    t = 1000.0
    # rate 2/s, burst 3: three at once between both workers, then one every half second
    taken = [s.take_token("token", 2.0, 3.0, t) for s in (a, b, a, b, a)]
    assert taken == [True, True, True, False, False]
    assert b.take_token("token", 2.0, 3.0, t + 0.5) and not a.take_token("token", 2.0, 3.0, t + 0.5)
    granted = sum(s.take_token("token", 2.0, 3.0, t + 1 + k / 100) for k in range(100) for s in (a, b))
    assert granted == 2, "over the next second, 2 tokens at 2/s (the bucket was empty)"
    assert a.take_token("chat:101", 1.0, 1.0, t) and not b.take_token("chat:101", 1.0, 1.0, t + 0.5)
    assert b.take_token("chat:102", 1.0, 1.0, t), "each chat has a bucket of its own"

"""Draining the outbox: one slow or stuck chat never holds up the others, for alerts and for digests."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.config import DigestDefaults, FeedConfig
from core.models import Hit, Item, Match
from delivery.outbox import deliver_digests, deliver_instant
from delivery.render import Keyboard
from delivery.sender import Outcome, Sent
from store import ProcessedItem, Store

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
URL = "https://news.example/rss"
MATCH = Match("military", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 7, 13, "Россия")))
CHATS = (101, 102, 103, 104, 105)
SLOW = 101


class GatedSender:
    """A MessageSender whose sends to the slow chat wait until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.progress = asyncio.Event()  # set after every completed send
        self.sent: list[tuple[str, int]] = []  # (chat, chunks), in the order they completed

    async def send(
        self,
        chat_id: int | str,
        chunks: Sequence[str],
        *,
        preview: bool = True,
        skip: int = 0,
        reply_markup: Sequence[Keyboard | None] = (),
    ) -> Outcome:
        if chat_id == SLOW:
            await self.gate.wait()
        self.sent.append((str(chat_id), len(chunks)))
        self.progress.set()
        return Sent(tuple(range(len(chunks))))

    async def send_photo(self, chat_id: int | str, photo: bytes, caption: str = "") -> Outcome:
        return Sent((1,))


@pytest.fixture
def store(store_target: Path | str) -> Iterator[Store]:
    s = Store.open(store_target)
    s.sync_feeds([FeedConfig(URL, "News", "ru", 600)], NOW)
    yield s
    s.close()


def queue(store: Store, mode: str, items: int = 2) -> None:
    for chat in CHATS:
        store.upsert_subscription(chat, NOW - timedelta(days=1), mode=mode, digest_time="08:00", timezone="UTC")
    feed = store.feed_by_url(URL)
    assert feed is not None
    store.commit_poll(
        feed.id,
        NOW,
        ok=True,
        etag=None,
        last_modified=None,
        error=None,
        next_poll_at=NOW + timedelta(minutes=10),
        items=[
            ProcessedItem(
                Item(URL, f"u{n}", f"КНДР и Россия: сюжет {n}", "s", f"https://news.example/{n}", NOW, "ru", "News"),
                (MATCH,),
                True,
            )
            for n in range(items)
        ],
    )


async def sent_to(sender: GatedSender, chats: set[str]) -> None:
    """Wait (at most 5 s) until exactly ``chats`` have had sends completed."""
    async with asyncio.timeout(5):
        while {chat for chat, _ in sender.sent} != chats:
            sender.progress.clear()
            await sender.progress.wait()


@pytest.mark.parametrize("mode", ["instant", "digest"])
async def test_a_stuck_chat_does_not_hold_up_the_others(store: Store, mode: str) -> None:
    queue(store, mode)
    sender = GatedSender()
    if mode == "instant":
        run = deliver_instant(store, sender, lambda: NOW)
    else:
        run = deliver_digests(store, sender, DigestDefaults(), lambda: NOW)
    task = asyncio.create_task(run)
    others = {str(c) for c in CHATS if c != SLOW}
    # every other chat gets all it is owed while the slow chat's first send is still waiting
    await sent_to(sender, others)
    assert not task.done() and all(chat != str(SLOW) for chat, _ in sender.sent)
    sender.gate.set()
    report = await task
    assert {chat for chat, _ in sender.sent} == others | {str(SLOW)}
    if mode == "instant":
        assert report.sent == 2 * len(CHATS)
        assert [c for c, _ in sender.sent].count(str(SLOW)) == 2  # in order, after the gate opened
        assert store.pending_instant(NOW) == []
    else:
        assert report.digests == len(CHATS)
        assert store.pending_instant(NOW) == []

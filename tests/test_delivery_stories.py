"""One story, one alert: later reports edit the first alert (or reply to it), end to end.

Feeds come from real HTTP servers on 127.0.0.1, the store is a real SQLite file, the rules are the
project's own (all of them, as in production: several rules match the same spans), and Telegram is the
emulator driven by python-telegram-bot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from telegram import Bot

from core.config import DigestDefaults, FeedConfig
from core.models import Item
from delivery.encoder import shared_encoder
from delivery.outbox import deliver_digests, deliver_instant
from delivery.sender import ChatPacer, Sender
from rules import RuleSet, load_rules
from service.demo import DEMO_FEEDS, EXAMPLES, demo_polling
from service.feedserver import FeedFileServer
from service.pipeline import Pipeline, assign_stories
from store import ProcessedItem, Store
from tests.feedhttp import rss
from tgemu import BotApiEmulator, SentMessage
from tgemu.server import parse_html
from watchers import PollSettings, make_client

TOKEN = "777:STORIES-token"
REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STORY_CHAT, EVERY_ITEM_CHAT = 501, 502
OUTLETS = 20


@pytest.fixture(scope="module")
def ruleset() -> RuleSet:
    return load_rules(sorted((REPO / "rules").glob("*.yaml")))


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[BotApiEmulator, Sender]]:
    with BotApiEmulator(TOKEN) as emu:
        for chat in (STORY_CHAT, EVERY_ITEM_CHAT):
            emu.add_chat(chat)
        async with Bot(TOKEN, base_url=emu.base_url) as bot:
            yield emu, Sender(bot, ChatPacer(private_interval=0, group_interval=0), network_retries=0)


@pytest.fixture
def store(store_target: Path | str) -> Iterator[Store]:
    s = Store.open(store_target)
    yield s
    s.close()


def subscribe(store: Store, chat: int, *, stories: bool = True, mode: str = "both") -> None:
    store.upsert_subscription(
        chat, NOW - timedelta(days=1), mode=mode, digest_time="08:00", timezone="UTC", stories=stories
    )


def visible(message: SentMessage) -> str:
    return parse_html(message.text)


async def poll(store: Store, ruleset: RuleSet, now: datetime) -> None:
    polling = demo_polling()
    async with make_client(PollSettings.from_config(polling)) as client:
        await Pipeline(store, client, lambda: ruleset, polling).run_cycle(now)


WIRE_TITLES = (
    "North Korea sends 5,000 military builders to Russia, Seoul says",
    "North Korea sends 5,000 military builders to Russia, Seoul says — update",
    "Seoul says North Korea sends 5,000 military builders to Russia",
    "North Korea to send 5,000 military builders to Russia, Seoul says",
)


async def test_twenty_outlets_within_a_minute_make_one_message_per_chat_and_one_digest_entry(
    httpserver: HTTPServer,
    store: Store,
    ruleset: RuleSet,
    telegram: tuple[BotApiEmulator, Sender],
    figure: Callable[[str], None],
) -> None:
    emu, sender = telegram
    feeds = []
    for n in range(OUTLETS):
        title = WIRE_TITLES[n % len(WIRE_TITLES)]
        link = f"https://outlet{n}.example/news/builders"
        summary = "South Korea's spy agency said the military construction workers would help rebuild Kursk."
        body = rss(f"Outlet {n}", link, [(title, link, summary, NOW - timedelta(seconds=60 - 3 * n))])
        httpserver.expect_request(f"/feed{n}.xml").respond_with_data(body, content_type="application/rss+xml")
        feeds.append(FeedConfig(httpserver.url_for(f"/feed{n}.xml"), f"Outlet {n:02d}", "en", 900))
    store.sync_feeds(feeds, NOW)
    subscribe(store, STORY_CHAT)
    subscribe(store, EVERY_ITEM_CHAT, stories=False)
    await poll(store, ruleset, NOW)

    report = await deliver_instant(store, sender, lambda: NOW)

    (alert,) = emu.sent(STORY_CHAT)
    assert alert.edits == 1  # 19 later reports, one coalesced edit
    text = visible(alert)
    assert f"— {OUTLETS} sources" in text and all(f"Outlet {n:02d}" in text for n in range(OUTLETS))
    assert len(emu.sent(EVERY_ITEM_CHAT)) == OUTLETS  # stories: off gets every item, as before
    assert report.edited == 1

    later = NOW.replace(hour=13)
    await deliver_digests(store, sender, DigestDefaults(), lambda: later)
    (digest,) = [m for m in emu.sent(STORY_CHAT) if m is not alert]
    digest_text = visible(digest)
    assert "1 stories · 20 items · 20 sources" in digest_text
    assert f"— {OUTLETS} sources" in digest_text and digest_text.count("• ") == 1
    figure(
        f"stories: {OUTLETS} outlets in a minute → {len(emu.sent(STORY_CHAT)) - 1} alert (edited {alert.edits}×, "
        f"{OUTLETS} sources) and 1 digest entry; stories: off → {len(emu.sent(EVERY_ITEM_CHAT)) - 1} alerts"
    )


async def test_the_demo_goremykin_talks_in_ru_en_ko_are_one_alert_with_three_sources(
    store: Store, ruleset: RuleSet, telegram: tuple[BotApiEmulator, Sender], figure: Callable[[str], None]
) -> None:
    emu, sender = telegram
    with FeedFileServer(EXAMPLES) as server:
        store.sync_feeds(
            [FeedConfig(f"{server.url}/{name}", title, lang, 900) for name, title, lang in DEMO_FEEDS], NOW
        )
        subscribe(store, STORY_CHAT, mode="instant")
        await poll(store, ruleset, NOW)
    await deliver_instant(store, sender, lambda: NOW)

    talks = [
        m
        for m in emu.sent(STORY_CHAT)
        if "Горемыкин" in visible(m)
        or "Goremykin" in visible(m)
        or "고레미킨" in visible(m)
        or "военных переговорах" in visible(m)
    ]
    assert len(talks) == 1, [visible(m)[:80] for m in emu.sent(STORY_CHAT)]
    text = visible(talks[0])
    assert "— 3 sources" in text
    assert all(name in text for _, name, _ in DEMO_FEEDS[1:])
    figure(
        f"stories: demo Goremykin talks ru/en/ko → {len(talks)} alert, 3 sources "
        f"({len(emu.sent(STORY_CHAT))} demo alerts in all)"
    )


# -- the edit path, driven report by report through the pipeline's story step --------------------------


def report(n: int, when: datetime, title: str = WIRE_TITLES[0]) -> Item:
    return Item(
        f"https://outlet{n}.example/rss",
        f"u{n}",
        title,
        "",
        f"https://outlet{n}.example/a",
        when,
        "en",
        f"Outlet {n:02d}",
    )


def arrive(store: Store, ruleset: RuleSet, item: Item, now: datetime) -> None:
    feed = store.feed_by_url(item.feed_url) or store.add_feed(item.feed_url, item.feed_name, "en", 900, "config", now)
    processed = assign_stories(store, shared_encoder(), [ProcessedItem(item, tuple(ruleset.match(item)), True)])
    store.commit_poll(
        feed.id, now, ok=True, etag=None, last_modified=None, error=None, next_poll_at=now, items=processed
    )


async def test_edits_are_rate_limited_per_message_and_coalesced(
    store: Store, ruleset: RuleSet, telegram: tuple[BotApiEmulator, Sender]
) -> None:
    emu, sender = telegram
    subscribe(store, STORY_CHAT, mode="instant")
    clock = [NOW]
    for n, seconds in enumerate((0, 5, 10, 15)):
        clock[0] = NOW + timedelta(seconds=seconds)
        arrive(store, ruleset, report(n, clock[0]), clock[0])
        await deliver_instant(store, sender, lambda: clock[0])
    (alert,) = emu.sent(STORY_CHAT)
    assert alert.edits == 1 and "— 2 sources" in visible(alert)  # the 3rd and 4th wait for the interval
    clock[0] = NOW + timedelta(seconds=40)
    await deliver_instant(store, sender, lambda: clock[0])
    assert alert.edits == 2 and "— 4 sources" in visible(alert)  # coalesced into one edit
    await deliver_instant(store, sender, lambda: clock[0] + timedelta(minutes=5))
    assert alert.edits == 2  # nothing new: no edit


async def test_a_russian_chats_edited_alert_names_its_sources_in_russian(
    store: Store, ruleset: RuleSet, telegram: tuple[BotApiEmulator, Sender]
) -> None:
    emu, sender = telegram
    subscribe(store, STORY_CHAT, mode="instant")
    subscribe(store, EVERY_ITEM_CHAT, mode="instant")
    store.set_chat_language(STORY_CHAT, "ru", NOW)  # chosen with /language ru
    for n in range(3):
        arrive(store, ruleset, report(n, NOW), NOW)
    await deliver_instant(store, sender, lambda: NOW)
    (russian,) = emu.sent(STORY_CHAT)
    (english,) = emu.sent(EVERY_ITEM_CHAT)
    assert russian.edits == english.edits == 1
    assert "также: Outlet 01 (en) · Outlet 02 (en) — 3 источника" in visible(russian)
    assert "also: Outlet 01 (en) · Outlet 02 (en) — 3 sources" in visible(english)


async def test_an_alert_that_cannot_be_edited_gets_a_reply_instead(
    store: Store, ruleset: RuleSet, telegram: tuple[BotApiEmulator, Sender]
) -> None:
    emu, sender = telegram
    subscribe(store, STORY_CHAT, mode="instant")
    arrive(store, ruleset, report(0, NOW), NOW)
    await deliver_instant(store, sender, lambda: NOW)
    (alert,) = emu.sent(STORY_CHAT)
    emu.user_deletes(STORY_CHAT, alert.message_id)  # editMessageText: 400 "message to edit not found"
    later = NOW + timedelta(minutes=1)
    arrive(store, ruleset, report(1, later), later)
    await deliver_instant(store, sender, lambda: later)
    (reply,) = emu.sent(STORY_CHAT)
    assert reply.reply_to == alert.message_id and "Outlet 01" in visible(reply) and "2 sources" in visible(reply)
    await deliver_instant(store, sender, lambda: later + timedelta(minutes=5))
    assert len(emu.sent(STORY_CHAT)) == 1  # the reply is not repeated


async def test_a_crash_between_the_edit_and_its_record_repeats_only_that_edit(
    store: Store, ruleset: RuleSet, telegram: tuple[BotApiEmulator, Sender]
) -> None:
    emu, sender = telegram
    subscribe(store, STORY_CHAT, mode="instant")
    arrive(store, ruleset, report(0, NOW), NOW)
    arrive(store, ruleset, report(1, NOW), NOW)
    await deliver_instant(store, sender, lambda: NOW)
    (alert,) = emu.sent(STORY_CHAT)
    assert alert.edits == 1
    store.conn.execute("UPDATE story_alerts SET dirty = 1, edited_at = NULL")  # as if the bot died right after
    await deliver_instant(store, sender, lambda: NOW + timedelta(minutes=1))
    edits = [r for r in emu.requests if r[1] == "editMessageText"]
    assert len(edits) == 2 and len(emu.sent(STORY_CHAT)) == 1 and alert.edits == 1  # "not modified": done
    assert not store.dirty_story_alerts()


async def test_a_different_story_is_a_new_alert(
    store: Store, ruleset: RuleSet, telegram: tuple[BotApiEmulator, Sender]
) -> None:
    emu, sender = telegram
    subscribe(store, STORY_CHAT, mode="instant")
    arrive(store, ruleset, report(0, NOW), NOW)
    arrive(store, ruleset, report(1, NOW, "North Korea sends 6,000 sappers to Russia's Kursk region"), NOW)
    week = NOW + timedelta(days=7)
    arrive(store, ruleset, report(2, week), week)  # word for word, a week later: another story
    await deliver_instant(store, sender, lambda: week)
    assert len(emu.sent(STORY_CHAT)) == 3


async def test_an_update_from_the_same_outlet_sends_nothing_and_edits_nothing(
    store: Store, ruleset: RuleSet, telegram: tuple[BotApiEmulator, Sender]
) -> None:
    emu, sender = telegram
    subscribe(store, STORY_CHAT, mode="instant")
    arrive(store, ruleset, report(0, NOW), NOW)
    await deliver_instant(store, sender, lambda: NOW)
    update = Item(report(0, NOW).feed_url, "u0-updated", WIRE_TITLES[1], "", None, NOW, "en", "Outlet 00")
    arrive(store, ruleset, update, NOW)
    await deliver_instant(store, sender, lambda: NOW + timedelta(minutes=1))
    (alert,) = emu.sent(STORY_CHAT)
    assert alert.edits == 0 and not [r for r in emu.requests if r[1] == "editMessageText"]

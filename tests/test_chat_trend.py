"""/trend end to end: a user asks in Telegram (the emulator) and gets a chart; digests with the chart on."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from core.models import Hit, Item, Match
from service.state import BotState
from store import ProcessedItem
from tests.running import running_bot
from tgemu import BotApiEmulator
from tgemu.server import SentMessage

REPO = Path(__file__).resolve().parents[1]
TOKEN = "4343:TREND-chat-token"
ADMIN, READER = 42, 7
NOW = datetime(2026, 5, 20, 9, 0, tzinfo=UTC)  # 12:00 in Moscow
URL = "https://news.example/rss"
MILITARY, KURSK = "dprk_russia_military", "dprk_in_kursk"


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for user in (ADMIN, READER):
            e.add_chat(user, "private")
        yield e


def write_config(tmp_path: Path, emu: BotApiEmulator, trend: bool) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        f"digest: {{time: '08:00', timezone: Europe/Moscow, trend: {str(trend).lower()}}}\n",
        encoding="utf-8",
    )
    return config


@pytest.fixture
async def bot(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[BotState]:
    async with running_bot(write_config(tmp_path, emu, trend=False), TOKEN, NOW) as state:
        yield state


def seed(state: BotState, days_ago: int, uid: str, *rules: str) -> None:
    """An item seen ``days_ago`` days before NOW, matched by ``rules`` (with DPRK and RUSSIA hits)."""
    feed = state.store.feed_by_url(URL) or state.store.add_feed(URL, "News", "ru", 600, "test", NOW)
    at = NOW - timedelta(days=days_ago)
    hits = (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 7, 13, "Россия"))
    item = Item(URL, uid, f"КНДР и Россия {uid}", "", f"https://news.example/{uid}", at, "ru", "News")
    state.store.commit_poll(
        feed.id,
        at,
        ok=True,
        etag=None,
        last_modified=None,
        error=None,
        next_poll_at=at,
        items=[ProcessedItem(item, tuple(Match(r, "digest", hits) for r in rules), deliver=True)],
    )


async def ask(emu: BotApiEmulator, chat: int, user: int, text: str, replies: int = 1) -> list[SentMessage]:
    """Send as a user; wait (off the event loop, where the bot runs) for the bot's ``replies`` messages."""
    before = len(emu.sent(chat))
    emu.user_sends(chat, user, text)
    got = await asyncio.to_thread(emu.wait_for, chat, before + replies, 20)
    assert len(got) >= before + replies, f"no reply to {text!r}"
    return got[before:]


async def test_anyone_gets_a_chart_of_every_rule_with_totals(emu: BotApiEmulator, bot: BotState) -> None:
    seed(bot, 0, "a", MILITARY)
    seed(bot, 1, "b", MILITARY, KURSK)
    seed(bot, 20, "old", MILITARY)  # outside the default 14 days
    (reply,) = await ask(emu, READER, READER, "/trend")
    assert reply.photo is not None, "a photo, not a text"
    with Image.open(io.BytesIO(reply.photo)) as image:
        assert image.size == (1000, 500)
    assert "last 14 days (Europe/Moscow)" in reply.text
    assert f"{MILITARY}: 2 · {KURSK}: 1" in reply.text


async def test_one_rule_over_a_chosen_number_of_days(emu: BotApiEmulator, bot: BotState) -> None:
    seed(bot, 0, "a", MILITARY)
    seed(bot, 20, "old", MILITARY, KURSK)
    (reply,) = await ask(emu, READER, READER, f"/trend {KURSK} 30")
    assert reply.photo is not None
    assert "last 30 days" in reply.text and f"{KURSK}: 1" in reply.text
    assert MILITARY not in reply.text, "only the rule asked for"
    (quiet,) = await ask(emu, READER, READER, f"/trend {KURSK} 7")
    assert quiet.photo is not None and "No matches in this period." in quiet.text


async def test_entities_are_counted_once_per_item(emu: BotApiEmulator, bot: BotState) -> None:
    seed(bot, 0, "a", MILITARY, KURSK)
    seed(bot, 2, "b", MILITARY)
    (reply,) = await ask(emu, READER, READER, "/trend entities")
    assert reply.photo is not None
    assert "DPRK: 2" in reply.text and "RUSSIA: 2" in reply.text


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        ("no_such_rule", f"Unknown rule 'no_such_rule'. Rules: {MILITARY}"),
        ("0", "Days must be from 1 to 90."),
        ("91", "Days must be from 1 to 90."),
        ("7 14", "Give at most a rule name and a number of days."),
    ],
)
async def test_bad_arguments_get_a_clear_error_and_no_chart(
    emu: BotApiEmulator, bot: BotState, args: str, problem: str
) -> None:
    (reply,) = await ask(emu, READER, READER, f"/trend {args}")
    assert reply.photo is None
    assert problem in reply.text and "Usage: /trend" in reply.text


async def test_help_lists_trend(emu: BotApiEmulator, bot: BotState) -> None:
    (reply,) = await ask(emu, READER, READER, "/help")
    assert "/trend [rule|entities] [days]" in reply.text


async def test_digest_now_with_trend_on_sends_the_chart_after_the_digest(emu: BotApiEmulator, tmp_path: Path) -> None:
    async with running_bot(write_config(tmp_path, emu, trend=True), TOKEN, NOW) as state:
        state.store.upsert_subscription(READER, NOW - timedelta(days=30), mode="digest")
        seed(state, 0, "a", MILITARY)
        seed(state, 3, "b", MILITARY, KURSK)
        digest, chart, answer = await ask(emu, READER, READER, "/digest_now", replies=3)
    assert digest.photo is None and "КНДР и Россия a" in digest.text
    assert chart.photo is not None and chart.text == "Matches per day, last 14 days"
    assert answer.photo is None and "Digest sent" in answer.text


async def test_trend_marks_the_days_of_the_rules_spikes(emu: BotApiEmulator, bot: BotState) -> None:
    from store.spikes import record_spike

    seed(bot, 0, "a", MILITARY)
    spiked = NOW - timedelta(days=3)
    assert record_spike(bot.store, f"rule:{MILITARY}", spiked, spiked - timedelta(hours=6), 9, 1.0, "⚡", MILITARY)
    (everything,) = await ask(emu, READER, READER, "/trend")
    assert f"⚡ spikes: {spiked:%d %b}" in everything.text
    (other,) = await ask(emu, READER, READER, f"/trend {KURSK}")
    assert "spikes" not in other.text  # another rule's chart: not its spike

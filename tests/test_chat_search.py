"""/search, its paging buttons, inline mode and /export, end to end: the real bot against the emulator."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from chat.search import CALLBACK_PATTERN, SearchError, split_args
from core.config import FeedConfig
from core.models import Hit, Item, Match
from service.state import BotState
from store import ProcessedItem
from store.search import EXPORT_COLUMNS
from tests.running import running_bot
from tgemu import BotApiEmulator

TOKEN = "6262:SEARCH-token"
ADMIN, READER, STRANGER, MEMBER = 42, 7, 9, 11
GROUP = -1001
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
URL = "https://news.example/rss"
RULES = "version: 1\ngroups:\n  DPRK: {aliases: [КНДР]}\nrules:\n  - name: ties\n    all: [DPRK]\n"
TIES = Match("ties", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for user in (ADMIN, READER, STRANGER, MEMBER):
            e.add_chat(user, "private")
        e.add_chat(GROUP, "supergroup", "Analysts")
        e.set_member(GROUP, MEMBER, "member")
        yield e


@pytest.fixture
async def bot(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[BotState]:
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{ADMIN}]\nstorage: {{path: bot.sqlite3}}\n"
        "rules: {files: [rules.yaml]}\n",
        encoding="utf-8",
    )
    async with running_bot(config, TOKEN, NOW) as state:
        state.store.sync_feeds([FeedConfig(URL, "News", None, 600)], NOW)
        state.store.upsert_subscription(READER, NOW, chat_type="private")
        state.store.upsert_subscription(GROUP, NOW, chat_type="supergroup")
        yield state


def store_items(state: BotState, *items: tuple[Item, tuple[Match, ...]], at: datetime = NOW) -> None:
    feed = state.store.feed_by_url(URL)
    assert feed is not None
    state.store.commit_poll(
        feed.id,
        at,
        ok=True,
        etag=None,
        last_modified=None,
        error=None,
        next_poll_at=at,
        items=[ProcessedItem(i, m, False) for i, m in items],
    )


def item(uid: str, title: str) -> Item:
    return Item(URL, uid, title, "", f"https://news.example/{uid}", NOW, None, "News")


async def say(emu: BotApiEmulator, chat: int, user: int, text: str, replies: int = 1) -> str:
    before = len(emu.sent(chat))
    emu.user_sends(chat, user, text)
    sent = await asyncio.to_thread(emu.wait_for, chat, before + replies, 10)
    assert len(sent) >= before + replies, f"no reply to {text!r}"
    return sent[-1].text


async def test_search_finds_inflected_russian_and_korean_with_particles(emu: BotApiEmulator, bot: BotState) -> None:
    store_items(
        bot,
        (item("ru", "КНДР: делегация в Пхеньяне"), (TIES,)),
        (item("ko", "북한의 병력 러시아 파병"), ()),
        (item("no", "Погода в Москве"), ()),
    )
    ru = await say(emu, READER, READER, "/search Пхеньян")
    assert "КНДР: делегация в Пхеньяне" in ru and 'href="https://news.example/ru"' in ru
    assert "ties — DPRK: «КНДР»" in ru and "Погода" not in ru
    ko = await say(emu, READER, READER, "/search 북한")
    assert "북한의 병력 러시아 파병" in ko and "no rule matched" in ko
    error = await say(emu, READER, READER, "/search -Пхеньян")
    assert "only exclusions" in error


async def test_results_page_with_buttons_ten_at_a_time(emu: BotApiEmulator, bot: BotState) -> None:
    for n in range(25):
        store_items(bot, (item(f"p{n}", f"Пхеньян новость {n:02d}"), ()), at=NOW - timedelta(hours=25 - n))
    await say(emu, GROUP, MEMBER, "/search Пхеньян")
    message = emu.sent(GROUP)[-1]
    assert "results 1–10" in message.text and "новость 24" in message.text and "новость 14" not in message.text
    ((label, data),) = emu.buttons(GROUP, message.message_id)
    assert label == "Older ▶" and len(data.encode()) <= 64 and re.match(CALLBACK_PATTERN, data)
    pages = []
    for step in range(2):
        buttons = dict(emu.buttons(GROUP, message.message_id))
        query = emu.user_clicks(GROUP, MEMBER, message.message_id, buttons["Older ▶"])
        assert await asyncio.to_thread(emu.wait_answer, query, 10) is not None
        edited = next(m for m in emu.sent(GROUP) if m.message_id == message.message_id)
        pages.append((edited.text, [t for t, _ in emu.buttons(GROUP, message.message_id)]))
        assert step == 1 or "results 11–20" in edited.text
    assert "results 11–20" in pages[0][0] and pages[0][1] == ["◀ Newer", "Older ▶"]
    assert "results 21–25" in pages[1][0] and "новость 00" in pages[1][0] and pages[1][1] == ["◀ Newer"]


async def test_a_stranger_can_neither_search_nor_page(emu: BotApiEmulator, bot: BotState) -> None:
    store_items(bot, (item("ru", "Делегация в Пхеньяне"), ()))
    assert "⛔" in await say(emu, STRANGER, STRANGER, "/search Пхеньян")
    assert "Пхеньяне" in await say(emu, ADMIN, ADMIN, "/search Пхеньян"), "an admin searches anywhere"


@pytest.mark.parametrize(
    ("user", "found"),
    [(ADMIN, True), (READER, True), (MEMBER, True), (STRANGER, False)],
    ids=["admin", "subscriber", "member-of-subscribed-group", "stranger"],
)
async def test_inline_mode_answers_admins_and_subscribers_only(
    emu: BotApiEmulator, bot: BotState, user: int, found: bool
) -> None:
    store_items(bot, (item("ru", "КНДР: делегация в Пхеньяне"), (TIES,)), (item("x", "Другое"), ()))
    query = emu.user_inline_query(user, "Пхеньян")
    answer = await asyncio.to_thread(emu.wait_inline_answer, query, 10)
    assert answer is not None, "every inline query gets an answer"
    titles = [r["title"] for r in answer["results"]]
    assert titles == (["КНДР: делегация в Пхеньяне"] if found else [])
    if found:
        content = answer["results"][0]["input_message_content"]
        assert 'href="https://news.example/ru"' in content["message_text"] and "ties" in content["message_text"]
        assert content["parse_mode"] == "HTML"


async def test_export_sends_a_csv_document_to_admins_only(emu: BotApiEmulator, bot: BotState) -> None:
    store_items(bot, (item("ru", "КНДР и Россия"), (TIES,)), (item("ko", "북한의 파병"), ()))
    store_items(bot, (item("old", "КНДР давно"), (TIES,)), at=NOW - timedelta(days=45))
    reply = await say(emu, ADMIN, ADMIN, "/export 30d", replies=2)  # the document, then what it holds
    assert "📤 1 matched items" in reply
    document = next(m for m in emu.sent(ADMIN) if m.document is not None)
    assert document.filename == "export-20260501.csv" and document.document is not None
    assert document.document.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(document.document.decode("utf-8-sig"))))
    assert [r["title"] for r in rows] == ["КНДР и Россия"] and list(rows[0]) == list(EXPORT_COLUMNS)
    assert "⛔" in await say(emu, READER, READER, "/export 30d")
    assert "no rule named" in await say(emu, ADMIN, ADMIN, "/export 30d nope")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["Пхеньян"], ("Пхеньян", None)),
        (["Пхеньян", "30"], ("Пхеньян", 30)),
        (["Пхеньян", "7d"], ("Пхеньян", 7)),
        (["2024"], ("2024", None)),  # a lone number is the query, not the days
        (['"Северная', 'Корея"', "-футбол", "14"], ('"Северная Корея" -футбол', 14)),
    ],
)
def test_search_arguments(args: list[str], expected: tuple[str, int | None]) -> None:
    assert split_args(args) == expected


@pytest.mark.parametrize(("args", "message"), [([], "give a query"), (["x", "9999"], "days must be")])
def test_search_argument_errors(args: list[str], message: str) -> None:
    with pytest.raises(SearchError, match=message):
        split_args(args)


def test_a_full_page_of_long_titles_and_many_rules_fits_one_message() -> None:
    from chat.search import PAGE, render_page
    from delivery.render import MAX_MESSAGE, visible_length
    from store.search import Found

    many = tuple(
        Match(f"rule_{n:02d}_" + "x" * 40, "digest", (Hit("G" * 50, "title", 0, 1, "К" * 200),)) for n in range(30)
    )
    found = [
        Found(
            n,
            Item(URL, str(n), "Заголовок " * 100, "", "https://news.example/" + "p" * 300, NOW, None, "N" * 300),
            NOW,
            many,
        )
        for n in range(PAGE)
    ]
    assert visible_length(render_page("Пхеньян " * 30, 30, 0, found, True)) <= MAX_MESSAGE

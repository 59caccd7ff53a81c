"""The feed list as OPML in chat: /feeds_export sends a file, an admin's .opml upload imports one."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.opml import OpmlFeed, parse_opml
from service.state import BotState
from tests.running import running_bot
from tgemu import BotApiEmulator
from tgemu.server import SentMessage

REPO = Path(__file__).resolve().parents[1]
TOKEN = "4242:OPML-token"
ADMIN, STRANGER = 42, 9
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
OPML = b"""<?xml version="1.0"?>
<opml version="2.0"><head><title>Mine</title></head><body>
  <outline text="Korea">
    <outline text="Yonhap" type="rss" xmlUrl="https://en.yna.co.kr/RSS/news.xml" language="en"/>
    <outline text="KCNA &lt;watch&gt;" type="rss" xmlUrl="https://kcnawatch.org/feed/"/>
  </outline>
  <outline text="TASS, again" type="rss" xmlUrl="https://tass.ru/rss/v2.xml"/>
  <outline text="Router" type="rss" xmlUrl="http://192.168.1.1/rss"/>
  <outline text="Empty"/>
</body></opml>
"""


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for user in (ADMIN, STRANGER):
            e.add_chat(user, "private")
        yield e


@pytest.fixture
async def bot(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[BotState]:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}', base_file_url: '{emu.base_file_url}'}}\nadmins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "feeds:\n  - {url: 'https://tass.ru/rss/v2.xml', name: TASS, lang: ru}\n",
        encoding="utf-8",
    )
    async with running_bot(config, TOKEN, NOW) as state:
        yield state


async def replies_to(emu: BotApiEmulator, chat: int, send: object, count: int = 1) -> list[SentMessage]:
    """Wait (off the event loop, where the bot runs) for ``count`` new messages after ``send()`` ran."""
    before = len(emu.sent(chat))
    assert callable(send)
    send()
    got = await asyncio.to_thread(emu.wait_for, chat, before + count, 10)
    assert len(got) >= before + count, "no reply"
    return got[before:]


def urls(state: BotState) -> set[str]:
    return {f.url for f in state.store.all_feeds(enabled_only=True)}


async def test_export_sends_a_document_that_parses_back(emu: BotApiEmulator, bot: BotState) -> None:
    document, text = await replies_to(emu, ADMIN, lambda: emu.user_sends(ADMIN, ADMIN, "/feeds_export"), 2)
    assert document.filename == "feeds.opml" and document.document is not None
    assert parse_opml(document.document).feeds == [OpmlFeed("https://tass.ru/rss/v2.xml", "TASS", "ru")]
    assert "1 feeds in feeds.opml" in text.text


async def test_an_admin_uploads_opml_and_gets_a_summary(emu: BotApiEmulator, bot: BotState) -> None:
    (reply,) = await replies_to(emu, ADMIN, lambda: emu.user_sends_document(ADMIN, ADMIN, "mine.OPML", OPML))
    assert "added 2, skipped 1 duplicate, 2 errors" in reply.text
    assert "outline 5 (line 8): 192.168.1.1 is a private or local address" in reply.text
    assert "outline 6 (line 9): no xmlUrl" in reply.text
    assert urls(bot) == {
        "https://tass.ru/rss/v2.xml",
        "https://en.yna.co.kr/RSS/news.xml",
        "https://kcnawatch.org/feed/",
    }
    # the imported feeds are in the next export, names intact
    document, _ = await replies_to(emu, ADMIN, lambda: emu.user_sends(ADMIN, ADMIN, "/feeds_export"), 2)
    assert document.document is not None
    assert [f.name for f in parse_opml(document.document).feeds] == ["TASS", "Yonhap", "KCNA <watch>"]


async def test_an_upload_revives_a_retired_feed(emu: BotApiEmulator, bot: BotState) -> None:
    tass = bot.store.feed_by_url("https://tass.ru/rss/v2.xml")
    assert tass is not None
    bot.store.commit_poll(
        tass.id, NOW, ok=False, etag=None, last_modified=None, error="HTTP 410 Gone", next_poll_at=NOW, gone=True
    )
    assert bot.store.due_feeds(NOW) == []
    (reply,) = await replies_to(emu, ADMIN, lambda: emu.user_sends_document(ADMIN, ADMIN, "mine.opml", OPML))
    assert "added 2, revived 1, skipped 0 duplicates, 2 errors" in reply.text
    assert "polled from the next cycle" in reply.text
    assert bot.store.retired_feeds() == []
    assert "https://tass.ru/rss/v2.xml" in {f.url for f in bot.store.due_feeds(NOW)}


async def test_any_file_with_the_caption_imports(emu: BotApiEmulator, bot: BotState) -> None:
    send = lambda: emu.user_sends_document(ADMIN, ADMIN, "feeds.xml", OPML, caption="/feeds_import")  # noqa: E731
    (reply,) = await replies_to(emu, ADMIN, send)
    assert "added 2" in reply.text
    (reply,) = await replies_to(emu, ADMIN, lambda: emu.user_sends_document(ADMIN, ADMIN, "x.opml", b"<rss/>"))
    assert "added 0, skipped 0 duplicates, 1 error" in reply.text and "not an OPML document" in reply.text


async def test_non_admins_are_refused_and_nothing_changes(emu: BotApiEmulator, bot: BotState) -> None:
    before = urls(bot)
    (reply,) = await replies_to(emu, STRANGER, lambda: emu.user_sends_document(STRANGER, STRANGER, "a.opml", OPML))
    assert "Only the bot's admins" in reply.text
    (reply,) = await replies_to(emu, STRANGER, lambda: emu.user_sends(STRANGER, STRANGER, "/feeds_export"))
    assert "Only the bot's admins" in reply.text
    assert all(m.document is None for m in emu.sent(STRANGER))
    assert urls(bot) == before


async def test_a_file_over_1_mb_is_refused_before_download(emu: BotApiEmulator, bot: BotState) -> None:
    big = OPML.replace(b"<body>", b"<body>" + b"<!-- padding -->" * 70_000)
    (reply,) = await replies_to(emu, ADMIN, lambda: emu.user_sends_document(ADMIN, ADMIN, "big.opml", big))
    assert "over 1 MB; nothing was imported" in reply.text
    assert urls(bot) == {"https://tass.ru/rss/v2.xml"}

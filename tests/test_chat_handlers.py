"""Chat commands end to end: a user types in Telegram (the emulator), the bot answers and acts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from chat.feeds import FetchLimits
from service.state import BotState
from tests.running import running_bot
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "4242:CHAT-token"
ADMIN, ANALYST, STRANGER, GROUP_ADMIN = 42, 7, 9, 8
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for user in (ADMIN, ANALYST, STRANGER):
            e.add_chat(user, "private")
        e.add_chat(-200, "supergroup", "Desk")
        e.set_member(-200, GROUP_ADMIN, "administrator")
        e.set_member(-200, STRANGER, "member")
        e.add_chat("@dprk_watch", "channel", "DPRK watch", "dprk_watch")
        e.set_member("@dprk_watch", ANALYST, "administrator")
        yield e


@pytest.fixture
async def bot(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[BotState]:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "digest: {time: '08:00', timezone: Europe/Moscow}\npolling: {allow_private_urls: true, timeout: 5}\n",
        encoding="utf-8",
    )
    async with running_bot(config, TOKEN, NOW) as state:
        yield state


async def say(emu: BotApiEmulator, chat: Any, user: int, text: str) -> str:
    """Send as a user and wait (off the event loop, where the bot runs) for the bot's reply."""
    before = len(emu.sent(chat))
    emu.user_sends(chat, user, text)
    replies = await asyncio.to_thread(emu.wait_for, chat, before + 1, 10)
    assert len(replies) > before, f"no reply to {text!r}"
    return replies[-1].text


async def test_a_user_subscribes_their_private_chat(emu: BotApiEmulator, bot: BotState) -> None:
    reply = await say(emu, ANALYST, ANALYST, "/subscribe dprk_russia_military instant")
    assert "Subscribed" in reply and "instant" in reply
    sub = bot.store.subscription(ANALYST)
    assert sub is not None and (sub.mode, sub.rules) == ("instant", ("dprk_russia_military",))
    assert "09:30 Asia/Seoul" in await say(emu, ANALYST, ANALYST, "/digest_time 09:30 Asia/Seoul")
    assert "muted for 8h" in await say(emu, ANALYST, ANALYST, "/mute 8h")
    assert "muted until" in await say(emu, ANALYST, ANALYST, "/subscriptions")
    assert "Unsubscribed" in await say(emu, ANALYST, ANALYST, "/unsubscribe")
    assert bot.store.subscription(ANALYST) is None


async def test_a_chat_opts_out_of_story_alerts_and_back(emu: BotApiEmulator, bot: BotState) -> None:
    reply = await say(emu, ANALYST, ANALYST, "/subscribe stories:off")
    assert "stories off" in reply
    sub = bot.store.subscription(ANALYST)
    assert sub is not None and not sub.stories
    await say(emu, ANALYST, ANALYST, "/subscribe instant")  # other changes keep the choice
    sub = bot.store.subscription(ANALYST)
    assert sub is not None and not sub.stories and sub.mode == "instant"
    await say(emu, ANALYST, ANALYST, "/subscribe stories:on")
    sub = bot.store.subscription(ANALYST)
    assert sub is not None and sub.stories


async def test_group_changes_need_a_group_administrator(emu: BotApiEmulator, bot: BotState) -> None:
    reply = await say(emu, -200, STRANGER, "/subscribe digest")
    assert "Only administrators" in reply and "Nothing was changed" in reply
    assert bot.store.subscription(-200) is None
    assert "Subscribed" in await say(emu, -200, GROUP_ADMIN, "/subscribe digest")
    assert "Only administrators" in await say(emu, -200, STRANGER, "/unsubscribe")
    assert bot.store.subscription(-200) is not None


async def test_a_channel_is_managed_from_a_private_chat(emu: BotApiEmulator, bot: BotState) -> None:
    assert "Subscribed <b>@dprk_watch</b>" in await say(emu, ANALYST, ANALYST, "/subscribe @dprk_watch both")
    assert "Only administrators of @dprk_watch" in await say(emu, STRANGER, STRANGER, "/subscribe @dprk_watch")
    assert "muted for 1h" in await say(emu, ADMIN, ADMIN, "/mute 1h @dprk_watch")  # config admins: any chat
    sub = bot.store.subscription("@dprk_watch")
    assert sub is not None and sub.mode == "both"


async def test_everyone_may_test_and_list_rules_but_not_see_status(emu: BotApiEmulator, bot: BotState) -> None:
    reply = await say(emu, STRANGER, STRANGER, "/test Шойгу прибыл в Пхеньян для переговоров о военном сотрудничестве")
    assert "dprk_russia_military" in reply and "DPRK: «Пхеньян»" in reply
    assert (
        await say(emu, STRANGER, STRANGER, "/test КНДР запустила баллистическую ракету") == "No rule matches this text."
    )
    assert "dprk_russia_military" in await say(emu, STRANGER, STRANGER, "/rules")
    assert "Only the bot's admins" in await say(emu, STRANGER, STRANGER, "/status")
    assert "Feeds" in await say(emu, ADMIN, ADMIN, "/status")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/subscribe nosuchrule", "Unknown rule(s): nosuchrule"),
        ("/subscribe instant digest", "Give one mode"),
        ("/digest_time 25:00", "is not a time of day"),
        ("/digest_time 08:00 Mars/Olympus", "Unknown time zone"),
        ("/mute forever", "is not a duration"),
        ("/test", "Give the text to test"),
    ],
)
async def test_bad_arguments_get_the_problem_and_the_usage(
    emu: BotApiEmulator, bot: BotState, text: str, expected: str
) -> None:
    await say(emu, ANALYST, ANALYST, "/subscribe")
    reply = await say(emu, ANALYST, ANALYST, text)
    assert expected in reply and "Usage: /" in reply


async def test_help_lists_commands_and_shows_the_user_id(emu: BotApiEmulator, bot: BotState) -> None:
    reply = await say(emu, STRANGER, STRANGER, "/help")
    assert "/subscribe" in reply and "/test" in reply and f"<code>{STRANGER}</code>" in reply


@pytest.mark.parametrize(
    ("args", "target", "rest"),
    [
        (["@chan", "instant"], "@chan", ["instant"]),
        (["1h", "@chan"], "@chan", ["1h"]),
        (["digest"], None, ["digest"]),
        (["@"], None, ["@"]),
    ],
)
def test_split_target(args: list[str], target: str | None, rest: list[str]) -> None:
    from chat.commands import split_target

    assert split_target(args) == (target, rest)


RU_FEED = (REPO / "examples" / "feeds" / "ru-politics.xml").read_bytes()


async def test_admins_manage_feeds_after_a_live_check(emu: BotApiEmulator, bot: BotState, httpserver: Any) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    httpserver.expect_request("/page").respond_with_data("<html><body>hi</body></html>", content_type="text/html")
    url = httpserver.url_for("/ru.xml")
    assert "Only the bot's admins" in await say(emu, ANALYST, ANALYST, f"/feed_add {url}")
    assert "Not added: not a feed" in await say(emu, ADMIN, ADMIN, f"/feed_add {httpserver.url_for('/page')}")
    assert "Added <b>Пример RU</b> (7 items now)" in await say(emu, ADMIN, ADMIN, f"/feed_add {url} Пример RU")
    respelt = url.replace("http://", "HTTP://") + "/?utm_source=tg"  # one feed: not added twice
    assert f"already polled (as {url})" in await say(emu, ADMIN, ADMIN, f"/feed_add {respelt}")
    assert url in await say(emu, ADMIN, ADMIN, "/feeds")
    assert "Removed" in await say(emu, ADMIN, ADMIN, f"/feed_remove {url}")
    assert all(f.url != url for f in bot.store.all_feeds(enabled_only=True))


async def test_feeds_shows_a_retired_feed_as_retired_until_feed_add_revives_it(
    emu: BotApiEmulator, bot: BotState, httpserver: Any
) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    gone, failing = httpserver.url_for("/ru.xml"), "https://down.example/rss"
    for url in (gone, failing, "https://ok.example/rss"):
        bot.store.add_feed(url, url.split("/")[2], "ru", 600, "config", NOW)
    for url, error, retired in ((gone, "HTTP 410 Gone", True), (failing, "HTTP 503", False)):
        feed_id = bot.store.feed_by_url(url).id  # type: ignore[union-attr]
        bot.store.commit_poll(
            feed_id, NOW, ok=False, etag=None, last_modified=None, error=error, next_poll_at=NOW, gone=retired
        )
    lines = (await say(emu, ADMIN, ADMIN, "/feeds")).split("\n")
    assert lines[0] == "<b>Feeds</b> (3)"
    retired = next(line for line in lines if gone in line)
    assert retired.startswith("⛔") and "retired, no longer polled (HTTP 410 Gone)" in retired
    assert f"/feed_add {gone} polls it again" in retired and "⚠️" not in retired
    assert next(line for line in lines if failing in line).startswith("⚠️")
    assert next(line for line in lines if "ok.example" in line).startswith("✅")
    assert "Added" in await say(emu, ADMIN, ADMIN, f"/feed_add {gone}")
    assert next(line for line in (await say(emu, ADMIN, ADMIN, "/feeds")).split("\n") if gone in line).startswith("✅")


async def test_test_accepts_a_feed_url(emu: BotApiEmulator, bot: BotState, httpserver: Any) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    reply = await say(emu, STRANGER, STRANGER, f"/test {httpserver.url_for('/ru.xml')}")
    assert reply.startswith("Feed with 7 items: 2 match.")
    assert "В КНДР сообщили о новых военных переговорах с Россией" in reply


async def test_url_tests_are_limited_per_user_except_for_admins(
    emu: BotApiEmulator, bot: BotState, httpserver: Any
) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    url = httpserver.url_for("/ru.xml")
    for _ in range(10):
        assert (await say(emu, STRANGER, STRANGER, f"/test {url}")).startswith("Feed with 7 items")
    reply = await say(emu, STRANGER, STRANGER, f"/test {url}")
    assert reply == (
        "⏳ At most 10 URL tests per 10 minutes; try again at 09:10 UTC (in 10 min). Testing text is not limited."
    )
    assert len(httpserver.log) == 10, "the refused test fetched nothing"
    assert "dprk_russia_military" in await say(emu, STRANGER, STRANGER, "/test Шойгу прибыл в Пхеньян")
    assert (await say(emu, ANALYST, ANALYST, f"/test {url}")).startswith("Feed with"), "each user has their own"
    for _ in range(11):
        assert (await say(emu, ADMIN, ADMIN, f"/test {url}")).startswith("Feed with"), "config admins are exempt"
    bot.clock = lambda: NOW + timedelta(minutes=10)
    assert (await say(emu, STRANGER, STRANGER, f"/test {url}")).startswith("Feed with"), "the window has passed"


def test_one_url_fetch_in_flight_per_user() -> None:
    limits = FetchLimits()
    assert limits.start(STRANGER, NOW) is None
    assert "still running" in (limits.start(STRANGER, NOW) or "")
    assert limits.start(ANALYST, NOW) is None, "other users are not held up"
    limits.finish(STRANGER)
    assert limits.start(STRANGER, NOW) is None
    limits.finish(STRANGER)
    for _ in range(8):
        assert limits.start(STRANGER, NOW + timedelta(minutes=3)) is None
        limits.finish(STRANGER)
    refusal = limits.start(STRANGER, NOW + timedelta(minutes=3))
    assert refusal is not None and "try again at 09:10 UTC (in 7 min)" in refusal
    assert limits.start(STRANGER, NOW + timedelta(minutes=10)) is None, "the two first fetches left the window"


async def test_digest_now_sends_what_is_queued(emu: BotApiEmulator, bot: BotState) -> None:
    from core.config import FeedConfig
    from core.models import Hit, Item, Match
    from store import ProcessedItem

    await say(emu, ANALYST, ANALYST, "/subscribe digest")
    assert "Nothing new" in await say(emu, ANALYST, ANALYST, "/digest_now")
    feed = FeedConfig("https://news.example/rss", "News", "en", 600)
    bot.store.sync_feeds([feed], NOW)
    feed_id = bot.store.feed_by_url(feed.url).id  # type: ignore[union-attr]
    match = Match("dprk_russia_military", "instant", (Hit("DPRK", "title", 0, 11, "North Korea"),))
    item = Item(feed.url, "x1", "North Korea sends troops to Russia", "", "https://news.example/x1", NOW, "en", "News")
    bot.store.commit_poll(
        feed_id,
        NOW,
        ok=True,
        etag=None,
        last_modified=None,
        error=None,
        next_poll_at=NOW,
        items=[ProcessedItem(item, (match,), True)],
    )
    before = len(emu.sent(ANALYST))
    emu.user_sends(ANALYST, ANALYST, "/digest_now")
    sent = await asyncio.to_thread(emu.wait_for, ANALYST, before + 2, 10)
    digest, reply = sent[-2], sent[-1]
    assert "North Korea sends troops to Russia" in digest.text and digest.link_preview_disabled
    assert reply.text.startswith("🗞 Digest sent to 7: 1 items")


async def test_a_command_that_fails_unexpectedly_still_answers_and_the_bot_goes_on(
    emu: BotApiEmulator, bot: BotState, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: object, **kwargs: object) -> str:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("chat.commands.status", broken)
    reply = await say(emu, ADMIN, ADMIN, "/status")
    assert "/status failed with an internal error" in reply and "disk on fire" not in reply
    assert any(r.getMessage().startswith("command_failed command=status") for r in caplog.records)
    assert "/subscribe" in await say(emu, ADMIN, ADMIN, "/help")


RU_USER = 11  # a user whose Telegram app speaks Russian


async def say_as(emu: BotApiEmulator, chat: Any, user: int, text: str, language_code: str | None) -> str:
    before = len(emu.sent(chat))
    emu.user_sends(chat, user, text, language_code=language_code)
    replies = await asyncio.to_thread(emu.wait_for, chat, before + 1, 10)
    assert len(replies) > before, f"no reply to {text!r}"
    return replies[-1].text


async def test_a_russian_user_gets_the_whole_interface_in_russian(emu: BotApiEmulator, bot: BotState) -> None:
    from chat import feedback
    from core.config import FeedConfig
    from core.models import Hit, Item, Match
    from delivery.outbox import deliver_instant
    from store import ProcessedItem

    emu.add_chat(RU_USER, "private")
    start = await say_as(emu, RU_USER, RU_USER, "/start", "ru")
    assert "Монитор КНДР–Россия" in start and "подписать этот чат (или канал)" in start and str(RU_USER) in start
    assert "Менять подписку чата" in await say_as(emu, RU_USER, RU_USER, "/help", "ru")
    assert "✅ Подписан" in await say_as(emu, RU_USER, RU_USER, "/subscribe both", "ru")
    error = await say_as(emu, RU_USER, RU_USER, "/mute банан", "ru")
    assert "⚠️ 'банан' — не длительность." in error and "Использование: /mute" in error
    # the chat keeps its language for what has no user to ask: alerts and digests
    feed = FeedConfig("https://news.example/rss", "News", "en", 600)
    bot.store.sync_feeds([feed], NOW)
    feed_id = bot.store.feed_by_url(feed.url).id  # type: ignore[union-attr]
    hit = Hit("DPRK", "title", 0, 11, "North Korea")
    matches = (Match("dprk_russia_military", "instant", (hit,), 0.91), Match("dprk_in_kursk", "digest", (hit,), 0.91))
    item = Item(feed.url, "x1", "North Korea sends troops to Russia", "", "https://news.example/x1", NOW, "en", "News")
    bot.store.commit_poll(
        feed_id, NOW, ok=True, etag=None, last_modified=None, error=None, next_poll_at=NOW,
        items=[ProcessedItem(item, matches, True)],
    )  # fmt: skip
    assert bot.sender is not None
    await deliver_instant(bot.store, bot.sender, bot.clock, votes=feedback.signer(bot.store))
    alert = emu.sent(RU_USER)[-1]
    assert "North Korea sends troops to Russia" in alert.text, "the feed's own text is not translated"
    assert "релевантность 0.91" in alert.text and "также: dprk_in_kursk" in alert.text
    up = alert.reply_markup["inline_keyboard"][0][0]["callback_data"]
    answer = await asyncio.to_thread(emu.wait_answer, emu.user_clicks(RU_USER, RU_USER, alert.message_id, up), 10)
    assert answer is not None and answer["text"] == "👍 записано"
    assert "Качество за последние 30 дней" in await say_as(emu, RU_USER, RU_USER, "/quality", "ru")
    before = len(emu.sent(RU_USER))
    emu.user_sends(RU_USER, RU_USER, "/digest_now", language_code="ru")
    digest, reply = (await asyncio.to_thread(emu.wait_for, RU_USER, before + 2, 10))[-2:]
    assert "🗞 <b>Сводка</b>" in digest.text and "1 сюжет · 1 материал · 1 источник" in digest.text
    assert reply.text == f"🗞 Сводка отправлена в {RU_USER}: 1 материал."


async def test_a_group_chooses_russian_with_the_language_command(emu: BotApiEmulator, bot: BotState) -> None:
    assert "Alerts and daily digests" in await say_as(emu, -200, STRANGER, "/help", "ru"), "a group: the default"
    refused = await say_as(emu, -200, STRANGER, "/language ru", "en")
    assert "Only administrators of -200" in refused and bot.store.chat_language(-200) is None
    assert "Unknown language 'de'" in await say_as(emu, -200, GROUP_ADMIN, "/language de", "en")
    assert "Теперь этот чат говорит по-русски" in await say_as(emu, -200, GROUP_ADMIN, "/language ru", "en")
    assert bot.store.chat_language(-200) == "ru"
    assert "Оповещения и ежедневные сводки" in await say_as(emu, -200, STRANGER, "/help", "en")
    assert "Здесь нет подписки" in await say_as(emu, -200, STRANGER, "/subscriptions", None)
    assert "Язык интерфейса этого чата: <b>русский</b>" in await say_as(emu, -200, GROUP_ADMIN, "/language", None)
    assert "English" in await say_as(emu, -200, GROUP_ADMIN, "/language en", "ru")
    assert "No subscription here" in await say_as(emu, -200, STRANGER, "/subscriptions", "ru")


async def test_the_command_menu_is_set_in_each_language(emu: BotApiEmulator, bot: BotState) -> None:
    from chat.commands import COMMANDS

    names = [name for name, _, _ in COMMANDS]
    assert [c["command"] for c in emu.commands] == names
    assert [c["command"] for c in emu.commands_by_language["ru"]] == names
    menu = {c["command"]: c["description"] for c in emu.commands_by_language["ru"]}
    assert menu["subscribe"] == "подписать этот чат (или канал)"
    assert {c["command"]: c["description"] for c in emu.commands_by_language["en"]}["subscribe"] == (
        "subscribe this chat (or a channel)"
    )


async def test_a_russian_admin_manages_feeds_in_russian(emu: BotApiEmulator, bot: BotState) -> None:
    url = "https://news.example/rss"
    bot.store.add_feed(url, "News", "ru", 600, "config", NOW)
    listing = await say_as(emu, ADMIN, ADMIN, "/feeds", "ru")
    assert listing.startswith("<b>Ленты</b> (1)") and f"✅ News [ru] {url}" in listing
    assert await say_as(emu, ADMIN, ADMIN, "/feed_add ftp://x", "ru") == (
        "⚠️ ftp://x — не http(s)-адрес и не @канал.\nИспользование: /feed_add URL|@канал [название]"
    )
    assert await say_as(emu, ADMIN, ADMIN, f"/feed_remove {url}", "ru") == f"Удалена {url}."
    assert await say_as(emu, ADMIN, ADMIN, "/feeds", "en") == "No feeds.", "an English user: English"

"""The Bot API emulator answers python-telegram-bot the way Telegram does, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from telegram import Bot
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter

from tgemu import BotApiEmulator
from tgemu.server import EntityError, parse_html

TOKEN = "123456:TEST-token"


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        e.add_chat(100, "private", "Analyst")
        e.add_chat(-200, "supergroup", "Desk")
        yield e


@pytest.mark.parametrize(
    ("html", "visible"),
    [
        ('<b>bold</b> &amp; <a href="https://x.example/?a=1&amp;b=2">link</a>', "bold & link"),
        ("a &lt;b&gt; &#1055;", "a <b> П"),
    ],
)
def test_parse_html_accepts_telegram_html(html: str, visible: str) -> None:
    assert parse_html(html) == visible


@pytest.mark.parametrize("bad", ["<script>x</script>", "<b>unclosed", "a < b", "tom & jerry", "<b><i>x</b></i>"])
def test_parse_html_refuses_what_telegram_refuses(bad: str) -> None:
    with pytest.raises(EntityError):
        parse_html(bad)


async def test_ptb_bot_round_trip_and_errors(emu: BotApiEmulator) -> None:
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        assert (await bot.get_me()).username == "monitor_test_bot"
        message = await bot.send_message(100, "<b>hi</b>", parse_mode="HTML")
        assert message.text == "hi" and emu.sent(100)[0].text == "<b>hi</b>"
        with pytest.raises(BadRequest, match="parse entities"):
            await bot.send_message(100, "<script>", parse_mode="HTML")
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(100, "x" * 4097)
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await bot.send_message(999, "x")
        emu.fail_next("sendMessage", "429", retry_after=7)
        with pytest.raises(RetryAfter) as info:
            await bot.send_message(100, "x")
        assert info.value.retry_after in (7, __import__("datetime").timedelta(seconds=7))
        emu.fail_next("sendMessage", "403", chat_id=-200)
        with pytest.raises(Forbidden):
            await bot.send_message(-200, "x")
        emu.fail_next("sendMessage", "migrate", chat_id=-200, new_chat_id=-100200)
        with pytest.raises(ChatMigrated) as migrated:
            await bot.send_message(-200, "x")
        assert migrated.value.new_chat_id == -100200
        emu.fail_next("sendMessage", "502")
        with pytest.raises(NetworkError):
            await bot.send_message(100, "x")
        emu.fail_next("sendMessage", "reset")
        with pytest.raises(NetworkError):
            await bot.send_message(100, "x")
        assert len(emu.sent(100)) == 1


async def test_long_polling_delivers_user_messages(emu: BotApiEmulator) -> None:
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        emu.user_sends(100, 42, "/start")
        updates = await bot.get_updates(timeout=2)
        assert updates[0].message is not None and updates[0].message.text == "/start"
        assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0) == ()


async def test_inline_keyboards_are_checked_and_callback_answers_recorded(emu: BotApiEmulator) -> None:
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    def keyboard(data: str, count: int = 1) -> InlineKeyboardMarkup:
        return InlineKeyboardMarkup([[InlineKeyboardButton(str(n), callback_data=data)] for n in range(count)])

    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        sent = await bot.send_message(100, "vote", reply_markup=keyboard("v:1:0:abc"))
        assert emu.buttons(100, sent.message_id) == [("0", "v:1:0:abc")]
        with pytest.raises(BadRequest, match=r"(?i)button_data_invalid"):
            await bot.send_message(100, "vote", reply_markup=keyboard("x" * 65))  # Telegram's limit is 64 bytes
        with pytest.raises(BadRequest, match="too long"):
            await bot.send_message(100, "vote", reply_markup=keyboard("v", 101))  # and 100 buttons
        query = emu.user_clicks(100, 100, sent.message_id, "v:1:0:abc")
        await bot.answer_callback_query(query, "👍 recorded")
        assert (emu.wait_answer(query, 1) or {})["text"] == "👍 recorded"


async def test_inline_queries_arrive_and_answers_are_checked_as_telegram_does(emu: BotApiEmulator) -> None:
    from telegram import InlineQueryResultArticle, InputTextMessageContent

    def article(n: int, text: str = "<b>x</b>") -> InlineQueryResultArticle:
        return InlineQueryResultArticle(str(n), f"t{n}", InputTextMessageContent(text, parse_mode="HTML"))

    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        query = emu.user_inline_query(42, "Пхеньян")
        (update,) = await bot.get_updates(timeout=2)
        assert update.inline_query is not None and update.inline_query.query == "Пхеньян"
        assert update.inline_query.id == query and update.inline_query.from_user.id == 42
        await bot.answer_inline_query(query, [article(1)], is_personal=True)
        answer = emu.wait_inline_answer(query, 1) or {}
        assert [r["title"] for r in answer["results"]] == ["t1"]
        with pytest.raises(BadRequest, match=r"(?i)results_too_much"):
            await bot.answer_inline_query(query, [article(n) for n in range(51)])
        with pytest.raises(BadRequest, match=r"(?i)result_id_invalid"):
            await bot.answer_inline_query(query, [article(1), article(1)])
        with pytest.raises(BadRequest, match=r"(?i)parse entities|message_text_invalid"):
            await bot.answer_inline_query(query, [article(1, "<b>unclosed")])

"""The Bot API emulator answers python-telegram-bot the way Telegram does, over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer
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


# -- webhooks --------------------------------------------------------------------------------------------

SECRET = "s3cret_token-A"


def update_json(body: bytes) -> dict[str, object]:
    import json

    loaded: dict[str, object] = json.loads(body)
    return loaded


async def test_a_webhook_takes_over_from_getupdates_until_deleted(emu: BotApiEmulator, httpserver: HTTPServer) -> None:
    from telegram.error import Conflict

    httpserver.expect_request("/hook", method="POST").respond_with_data("", status=503)  # keeps the update pending
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        assert (await bot.get_webhook_info()).url == ""
        assert await bot.set_webhook(httpserver.url_for("/hook"), secret_token=SECRET, allowed_updates=["message"])
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count) == (httpserver.url_for("/hook"), 0)
        assert emu.webhook_calls[0]["secret_token"] == SECRET
        with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active; use deleteWebhook"):
            await bot.get_updates(timeout=0)
        emu.user_sends(100, 42, "/start")
        emu.wait_webhook_posts(1)
        info = await bot.get_webhook_info()
        assert info.pending_update_count == 1
        assert info.last_error_message == "Wrong response from the webhook: 503 SERVICE UNAVAILABLE"
        assert await bot.delete_webhook()
        assert (await bot.get_webhook_info()).url == ""
        (update,) = await bot.get_updates(timeout=0)  # the update the webhook refused is still there
        assert update.message is not None and update.message.text == "/start"


async def test_updates_are_posted_in_order_with_the_secret_and_reposted_after_a_refusal(
    emu: BotApiEmulator, httpserver: HTTPServer
) -> None:
    httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("down", status=500)
    for _ in range(2):
        httpserver.expect_ordered_request("/hook", method="POST").respond_with_data("")
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        await bot.set_webhook(httpserver.url_for("/hook"), secret_token=SECRET)
        emu.user_sends(100, 42, "/start")
        emu.user_sends(100, 42, "/subscribe")
        posts = emu.wait_webhook_posts(3)
        assert [(p.update_id, p.status) for p in posts] == [(1, 500), (1, 200), (2, 200)]
        bodies = [update_json(request.get_data()) for request, _ in httpserver.log]
        assert [b["update_id"] for b in bodies] == [1, 1, 2]
        assert [b["message"]["text"] for b in bodies] == ["/start", "/start", "/subscribe"]  # type: ignore[index]
        assert {request.headers["X-Telegram-Bot-Api-Secret-Token"] for request, _ in httpserver.log} == {SECRET}
        assert {request.headers["Content-Type"] for request, _ in httpserver.log} == {"application/json"}
        assert (await bot.get_webhook_info()).pending_update_count == 0


@pytest.mark.parametrize(
    ("name", "url", "secret", "error"),
    [
        ("another host", "https://bot.example.org/hook", SECRET, r"posts only to http\(s\)://127.0.0.1 or localhost"),
        ("not http", "ftp://127.0.0.1/hook", SECRET, "posts only to"),
        ("secret with a space", "http://127.0.0.1:9/hook", "two words", "secret token contains unallowed characters"),
        ("secret too long", "http://127.0.0.1:9/hook", "x" * 257, "secret token contains unallowed characters"),
    ],
)
async def test_set_webhook_refuses_what_it_must_not_post_to(
    emu: BotApiEmulator, name: str, url: str, secret: str, error: str
) -> None:
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        with pytest.raises(BadRequest, match=error):
            await bot.set_webhook(url, secret_token=secret)
    assert emu.webhook is None, name


async def test_set_webhook_can_drop_pending_updates_and_posts_only_the_kinds_asked_for(
    emu: BotApiEmulator, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/hook", method="POST").respond_with_data("")
    emu.user_sends(100, 42, "/old")  # queued while nobody listened
    async with Bot(TOKEN, base_url=emu.base_url) as bot:
        await bot.set_webhook(httpserver.url_for("/hook"), allowed_updates=["message"], drop_pending_updates=True)
        assert (await bot.get_webhook_info()).allowed_updates == ("message",)
        emu.user_inline_query(42, "Пхеньян")  # not a kind the bot asked for: Telegram never sends it
        emu.user_sends(100, 42, "/new")
        (posted,) = emu.wait_webhook_posts(1)
        assert [update_json(request.get_data())["message"]["text"] for request, _ in httpserver.log] == ["/new"]  # type: ignore[index]
        assert posted.secret_token is None and "X-Telegram-Bot-Api-Secret-Token" not in httpserver.log[0][0].headers
        assert emu.pending_updates() == 0

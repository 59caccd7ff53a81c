"""The sender against the emulator: Telegram's failures become outcomes, never exceptions."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

import pytest
from telegram import Bot

from delivery.redact import TokenRedactor
from delivery.sender import ChatPacer, Failed, Gone, Migrated, Retry, Sender, Sent
from tgemu import BotApiEmulator

TOKEN = "555:SENDER-token"


@pytest.fixture
async def setup() -> AsyncIterator[tuple[BotApiEmulator, Sender]]:
    with BotApiEmulator(TOKEN) as emu:
        for chat in (1, 2, -3):
            emu.add_chat(chat, "private" if chat > 0 else "supergroup")
        async with Bot(TOKEN, base_url=emu.base_url) as bot:
            yield emu, Sender(bot, ChatPacer(private_interval=0, group_interval=0), network_retries=2, backoff=0.01)


@pytest.mark.parametrize(
    ("name", "kind", "times", "expected"),
    [
        ("flood control", "429", 1, Retry),
        ("bot kicked", "403", 1, Gone),
        ("group upgraded", "migrate", 1, Migrated),
        ("chat not found", "400_chat", 1, Failed),
        ("5xx then recovers", "500", 2, Sent),
        ("5xx persists", "502", 5, Retry),
        ("connection reset then recovers", "reset", 1, Sent),
        ("bad entities resent as plain text", "400_entities", 1, Sent),
    ],
)
async def test_outcomes(setup: tuple[BotApiEmulator, Sender], name: str, kind: str, times: int, expected: type) -> None:
    emu, sender = setup
    emu.fail_next("sendMessage", kind, chat_id=1, times=times, retry_after=9, new_chat_id=-100777)
    outcome = await sender.send(1, ["<b>Kim &amp; Putin</b>"])
    assert isinstance(outcome, expected), name
    if isinstance(outcome, Retry) and kind == "429":
        assert outcome.after == 9
    if isinstance(outcome, Migrated):
        assert outcome.new_chat_id == -100777
    if kind == "400_entities":
        (message,) = emu.sent(1)
        assert (message.text, message.parse_mode) == ("Kim & Putin", None)


async def test_a_failed_chunk_reports_where_to_resume(setup: tuple[BotApiEmulator, Sender]) -> None:
    emu, sender = setup
    await sender.send(2, ["warm-up"])
    emu.fail_next("sendMessage", "429", chat_id=2, retry_after=1)
    emu_calls = len(emu.sent(2))
    outcome = await sender.send(2, ["one"], skip=0)
    assert isinstance(outcome, Retry) and outcome.sent == 0 and len(emu.sent(2)) == emu_calls
    outcome = await sender.send(2, ["one", "two", "three"], skip=1)
    assert isinstance(outcome, Sent) and [m.text for m in emu.sent(2)][-2:] == ["two", "three"]


async def test_each_chunk_carries_its_own_buttons_even_when_resent_as_plain_text(
    setup: tuple[BotApiEmulator, Sender],
) -> None:
    emu, sender = setup
    first, second = ((("1 👍", "v:1:1:a"), ("1 👎", "v:1:0:a")),), ((("2 👍", "v:2:1:b"),),)
    emu.fail_next("sendMessage", "400_entities", chat_id=1, after=1)  # the second chunk's HTML is refused
    outcome = await sender.send(1, ["<b>one</b>", "<b>two</b>", "three"], reply_markup=[first, second])
    assert isinstance(outcome, Sent)
    one, two, three = emu.sent(1)
    assert emu.buttons(1, one.message_id) == list(first[0])
    assert (two.text, emu.buttons(1, two.message_id)) == ("two", list(second[0]))  # plain text, same buttons
    assert emu.buttons(1, three.message_id) == []


async def test_pacer_spaces_messages_per_chat() -> None:
    pacer = ChatPacer(private_interval=0.2, group_interval=0.5)
    started = time.monotonic()
    for _ in range(3):
        await pacer.wait(1)
    await pacer.wait(2)  # another chat is not held up
    assert 0.35 <= time.monotonic() - started < 1.5  # two 0.2 s gaps; chat 2 added none
    started = time.monotonic()
    await pacer.wait(-3)
    await pacer.wait(-3)
    assert time.monotonic() - started >= 0.45


def test_token_is_redacted_from_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(TokenRedactor(TOKEN))
    with caplog.at_level(logging.INFO):
        logger.info("POST https://api.telegram.org/bot%s/sendMessage", TOKEN)
    assert TOKEN not in caplog.text and "<redacted>" in caplog.text

"""The delivery state machine's bound, fault by fault, through the real HTTP path.

Telegram accepts a message but python-telegram-bot cannot read the reply (the emulator answers with
``link_preview_options`` as a string, or a message without ``chat``/``date``), or the process dies
between the send and its record. Whatever happens after Telegram may have accepted a message, one chat
sees it at most twice, then it is "uncertain": logged, counted, the admins told once per incident. The
old code resent such an alert on every delivery pass, without limit.
"""

from __future__ import annotations

import re
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape as xml_escape
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from telegram.ext import Application

from delivery.sender import ChatPacer
from service.app import run_deliver_locked, run_digests, run_poll
from service.state import BotState
from tests.running import running_app
from tgemu import BotApiEmulator
from tgemu.server import SentMessage, parse_html

REPO = Path(__file__).resolve().parents[1]
TOKEN = "31337:DELIVERY-token"
ADMIN = 42
FAULTY, OK = -200, 100
START = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)  # 08:00 in Seoul; the digest is at 09:00
MARK = re.compile(r"Сделка (\d{4})")
PAD = " ".join(["стороны обсудили поставки, логистику, связь и подготовку офицеров"] * 4)
PASSES = 8  # delivery passes after the first cycle (the old code sent one more copy on each)


def title(n: int) -> str:
    return f"Сделка {1100 + n}: Шойгу прибыл в Пхеньян для переговоров о военном сотрудничестве; {PAD}"


def feed_xml(count: int, published: datetime) -> bytes:
    body = "".join(
        f"<item><title>{xml_escape(title(n))}</title><link>https://news.example/{n}</link>"
        f"<guid isPermaLink='false'>d-{n}</guid>"
        f"<pubDate>{format_datetime(published + timedelta(minutes=n))}</pubDate><description></description></item>"
        for n in range(count)
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Лента</title>"
        f"<link>https://news.example/</link><language>ru</language>{body}</channel></rss>"
    ).encode()


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        e.add_chat(ADMIN, "private")
        e.add_chat(OK, "private")
        e.add_chat(FAULTY, "group", "Desk")
        yield e


@pytest.fixture
def clock() -> list[datetime]:
    return [START]


def write_config(tmp_path: Path, emu: BotApiEmulator, feed_url: str, mode: str, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\n"
        f"admins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "polling: {allow_private_urls: true, timeout: 5, backlog: {max_items: 100, max_age: null}}\n"
        "digest: {time: '09:00', timezone: Asia/Seoul}\n"
        f"feeds:\n  - {{url: '{feed_url}', name: Лента, lang: ru}}\n"
        f"subscriptions:\n  - {{chat: {FAULTY}, mode: {mode}}}\n  - {{chat: {OK}, mode: {mode}}}\n" + extra,
        encoding="utf-8",
    )
    return path


@asynccontextmanager
async def start(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    clock: list[datetime],
    mode: str,
    items: int = 6,
    extra: str = "",
) -> AsyncIterator[tuple[Application, BotState]]:  # type: ignore[type-arg]
    feed = feed_xml(items, START - timedelta(hours=2))
    httpserver.expect_request("/feed.xml").respond_with_data(feed, content_type="application/rss+xml")
    config = write_config(tmp_path, emu, httpserver.url_for("/feed.xml"), mode, extra)
    async with running_app(config, TOKEN, clock[0]) as (app, state):
        state.clock = lambda: clock[0]
        assert state.sender is not None
        state.sender.pacer = ChatPacer(0.0, 0.0)
        state.sender.backoff = 0.0
        yield app, state


def visible(message: SentMessage) -> str:
    return parse_html(message.text) if message.parse_mode == "HTML" else message.text


def copies(messages: list[SentMessage]) -> Counter[str]:
    """How many times each item (by its mark) reached the chat."""
    return Counter(m for message in messages for m in MARK.findall(visible(message)))


def outbox_rows(state: BotState, chat: int) -> list[tuple[int, str, int, int | None, str | None]]:
    rows = state.store.conn.execute(
        "SELECT o.id, o.state, o.unconfirmed, o.message_id, o.chat_id FROM outbox o "
        "JOIN subscriptions s ON s.id = o.subscription_id WHERE s.chat_id = ? ORDER BY o.id",
        (str(chat),),
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


def told_uncertain(emu: BotApiEmulator) -> int:
    return sum("may or may not have reached" in m.text for m in emu.sent(ADMIN))


async def deliver_passes(app: Application, state: BotState, clock: list[datetime], n: int) -> None:  # type: ignore[type-arg]
    for _ in range(n):
        clock[0] += timedelta(seconds=10)
        async with state.lock:
            await run_deliver_locked(app)


@pytest.mark.parametrize("kind", ["bad_reply", "bad_reply_fields"])
async def test_unreadable_reply_sends_an_alert_at_most_twice_then_uncertain(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    clock: list[datetime],
    kind: str,
    figure: Callable[[str], None],
) -> None:
    emu.fail_next("sendMessage", kind, chat_id=FAULTY, times=10_000)  # every send to FAULTY: accepted, unreadable
    async with start(tmp_path, emu, httpserver, clock, "instant") as (app, state):
        await run_poll(app)
        await deliver_passes(app, state, clock, PASSES)
        got = copies(emu.sent(FAULTY))
        assert len(got) == 6, "every alert reached the chat"
        assert max(got.values()) <= 2, f"an alert Telegram may have accepted went out {max(got.values())} times"
        assert {row[1] for row in outbox_rows(state, FAULTY)} == {"uncertain"}
        assert copies(emu.sent(OK)) == Counter(dict.fromkeys(got, 1)), "the other chat: each alert exactly once"
        assert told_uncertain(emu) == 1, "the admins are told once per incident, not per entry or per pass"
        uncertain = state.metrics.telegram_messages.labels("uncertain")._value.get()
        assert uncertain == 6
        figure(
            f"unreadable reply ({kind}): {max(got.values())} copies per alert at most over {PASSES + 1} passes "
            f"({sum(got.values())} messages for {len(got)} alerts); admins told {told_uncertain(emu)}x"
        )


async def test_sent_alerts_record_telegram_message_id_and_chat(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, clock: list[datetime]
) -> None:
    async with start(tmp_path, emu, httpserver, clock, "instant", items=3) as (app, state):
        await run_poll(app)
        rows = outbox_rows(state, OK)
        sent = {MARK.findall(visible(m))[0]: m.message_id for m in emu.sent(OK)}
        assert [r[1] for r in rows] == ["sent"] * 3
        assert sorted(r[3] for r in rows if r[3] is not None) == sorted(sent.values())
        assert {r[4] for r in rows} == {str(OK)}


async def test_digest_with_unreadable_reply_is_bounded_too(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    clock: list[datetime],
    figure: Callable[[str], None],
) -> None:
    emu.fail_next("sendMessage", "bad_reply", chat_id=FAULTY, times=10_000, after=1)  # from its 2nd message on
    async with start(tmp_path, emu, httpserver, clock, "digest", items=12) as (app, state):
        await run_poll(app)
        clock[0] += timedelta(hours=1, minutes=1)  # 09:01 in Seoul
        for _ in range(PASSES):
            await run_digests(app)
            clock[0] += timedelta(seconds=30)
        assert len(emu.sent(OK)) >= 2, "the digest needs more than one message"
        got = copies(emu.sent(FAULTY))
        assert set(got) == set(copies(emu.sent(OK))), "nothing is lost: every item reached the chat"
        assert max(got.values()) <= 2
        states = Counter(r[1] for r in outbox_rows(state, FAULTY))
        assert set(states) <= {"sent", "uncertain"} and states["uncertain"] > 0
        assert told_uncertain(emu) == 1
        figure(f"digest with unreadable replies: {max(got.values())} copies per item at most over {PASSES} passes")


async def test_entries_left_in_flight_by_a_crash_are_resent_once_then_uncertain(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, clock: list[datetime]
) -> None:
    emu.fail_next("sendMessage", "429", chat_id=FAULTY, retry_after=5)  # FAULTY's alerts wait for a later pass
    async with start(tmp_path, emu, httpserver, clock, "instant", items=2) as (app, state):
        await run_poll(app)
        ids = [r[0] for r in outbox_rows(state, FAULTY)]
        assert emu.sent(FAULTY) == [] and len(ids) == 2
        # The process dies after recording "in flight" (Telegram may have taken the alerts); the restart
        # counts that as one send, then dies again while resending them.
        state.store.begin_send(ids, clock[0])
        assert state.store.resolve_in_flight() == (ids, [])
        state.store.begin_send(ids, clock[0])
        clock[0] += timedelta(seconds=10)
        async with state.lock:
            await run_deliver_locked(app)  # the next start's first pass
        assert [(r[1], r[2]) for r in outbox_rows(state, FAULTY)] == [("uncertain", 2), ("uncertain", 2)]
        assert emu.sent(FAULTY) == [], "two sends Telegram may have accepted: not a third"
        assert told_uncertain(emu) == 1


async def test_one_crash_repeats_an_alert_once(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, clock: list[datetime]
) -> None:
    emu.fail_next("sendMessage", "429", chat_id=FAULTY, retry_after=5)
    async with start(tmp_path, emu, httpserver, clock, "instant", items=2) as (app, state):
        await run_poll(app)
        ids = [r[0] for r in outbox_rows(state, FAULTY)]
        state.store.begin_send(ids, clock[0])  # died in flight
        clock[0] += timedelta(seconds=10)
        async with state.lock:
            await run_deliver_locked(app)
        assert [(r[1], r[2]) for r in outbox_rows(state, FAULTY)] == [("sent", 1), ("sent", 1)]
        assert len(emu.sent(FAULTY)) == 2 and told_uncertain(emu) == 0


async def test_a_failed_record_after_the_send_is_resent_once_then_uncertain(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    clock: list[datetime],
    figure: Callable[[str], None],
) -> None:
    """``mark_sent`` fails (a real SQLite error: another connection takes the store's write lock the moment
    Telegram accepts a message to FAULTY, and lets go before the next pass)."""
    async with start(tmp_path, emu, httpserver, clock, "instant", items=2) as (app, state):
        state.store.conn.execute("PRAGMA busy_timeout = 50")
        locker = sqlite3.connect(state.store.path, isolation_level=None, check_same_thread=False)

        def hold_the_write_lock(message: SentMessage) -> None:
            if str(message.chat_id) == str(FAULTY) and not locker.in_transaction:
                locker.execute("BEGIN IMMEDIATE")

        emu.on_accept = hold_the_write_lock
        try:
            await run_poll(app)
            for _ in range(PASSES):
                if locker.in_transaction:
                    locker.execute("ROLLBACK")  # the store can be written again before the next pass
                clock[0] += timedelta(seconds=10)
                async with state.lock:
                    await run_deliver_locked(app)
        finally:
            emu.on_accept = None
            if locker.in_transaction:
                locker.execute("ROLLBACK")
            locker.close()
        got = copies(emu.sent(FAULTY))
        figure(f"record after the send fails: {max(got.values())} copies per alert over {PASSES + 1} passes")
        assert len(got) == 2 and max(got.values()) == 2, dict(got)
        assert [(r[1], r[2]) for r in outbox_rows(state, FAULTY)] == [("uncertain", 2), ("uncertain", 2)]
        other = copies(emu.sent(OK))  # the lock is the whole store's: OK's records failed too, now and then
        assert set(other) == set(got) and max(other.values()) <= 2
        assert told_uncertain(emu) == 1

"""Telegram failing for one chat, case by case: nothing lost, nothing doubled, the other chats unaffected.

Three chats follow one local feed; a real poll cycle queues the same matching items for all three,
and the emulator makes Telegram fail for ONE of them (429, 5xx, a dropped connection, "can't parse
entities", 403, a group migrated to a supergroup) or the items are oversized. Cycles are driven with
``service.app.run_poll`` / ``run_deliver_locked`` / ``run_digests`` and a fake clock. Digests are
built big enough to need several messages, and the fault hits the second one.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
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
TOKEN = "31337:FAULTS-token"
ADMIN = 42
FAULTY, OK_PRIVATE, OK_OTHER = -200, 100, 300  # the faulty chat is a group, so it can migrate
MIGRATED_TO = -1000000000200
START = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)  # 08:00 in Seoul; the digest is at 09:00
MARK = re.compile(r"Сделка (\d{4})")
PAD = " ".join(["стороны обсудили поставки, логистику, связь и подготовку офицеров"] * 4)
ITEMS = 12  # long titles: a digest of them is over 4096 characters


@dataclass(frozen=True)
class Fault:
    kind: str | None  # emulator fault kind, None: no fault (the items themselves are the problem)
    times: int = 1
    retry_after: int = 1
    huge: bool = False  # huge titles and summaries, a regex hit of 3,600 characters, a 5,000-character feed name
    later: bool = False  # the faulty chat's messages wait for a later delivery run (else: same cycle)


CASES = {
    "429": Fault("429", retry_after=7, later=True),
    "500": Fault("500", times=3, later=True),  # more than the sender's in-call retries: the outbox retries later
    "502": Fault("502", times=1),  # retried within the call
    "reset": Fault("reset", times=3, later=True),
    "400_entities": Fault("400_entities"),
    "403": Fault("403"),
    "migrate": Fault("migrate"),
    "oversize": Fault(None, huge=True),
}


def feed_xml(huge: bool) -> bytes:
    published = START - timedelta(hours=2)
    items = [
        (f"Сделка {1100 + i}: Шойгу прибыл в Пхеньян для переговоров о военном сотрудничестве; {PAD}", "")
        for i in range(ITEMS)
    ]
    items.append(("Погода в Москве: снег и ветер", "Ничего о КНДР."))  # matches no rule
    if huge:
        items.append((f"Сделка 1190: КНДР передала России артиллерийские снаряды {'очень ' * 1000}", ""))
        items.append(("Сделка 1191: КНДР передала России ракеты", "Пхеньян и Москва. " * 1700))
        items.append(("Сделка 1192: без стран", f"широкое начало {'текст ' * 600} широкий конец"))  # WIDE only
    body = "".join(
        f"<item><title>{xml_escape(title)}</title><link>https://news.example/{n}</link>"
        f"<guid isPermaLink='false'>f-{n}</guid><pubDate>{format_datetime(published + timedelta(minutes=n))}</pubDate>"
        f"<description>{xml_escape(summary)}</description></item>"
        for n, (title, summary) in enumerate(items)
    )
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Лента</title>"
        f"<link>https://news.example/</link><language>ru</language>{body}</channel></rss>"
    ).encode()


def expected_marks(fault: Fault) -> set[str]:
    marks = {str(1100 + i) for i in range(ITEMS)}
    return marks | {"1190", "1191", "1192"} if fault.huge else marks


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        e.add_chat(ADMIN, "private")
        e.add_chat(OK_PRIVATE, "private")
        e.add_chat(OK_OTHER, "private")
        e.add_chat(FAULTY, "group", "Desk")
        e.add_chat(MIGRATED_TO, "supergroup", "Desk")
        yield e


WIDE_RULE = """\
version: 1
groups:
  WIDE:
    aliases:
      - re: 'широкое начало.*широкий конец'
rules:
  - name: wide_span
    description: A regex whose hit spans a whole summary
    priority: instant
    all: [WIDE]
"""


def write_config(tmp_path: Path, emu: BotApiEmulator, feed_url: str, mode: str, huge: bool = False) -> Path:
    subs = "".join(f"  - {{chat: {chat}, mode: {mode}}}\n" for chat in (FAULTY, OK_PRIVATE, OK_OTHER))
    rule_files = [f"{REPO / 'rules'}/*.yaml"]
    name = "Лента"
    if huge:
        (tmp_path / "wide.yaml").write_text(WIDE_RULE, encoding="utf-8")
        rule_files.append(str(tmp_path / "wide.yaml"))
        name = "Лента " * 1000
    path = tmp_path / "config.yaml"
    path.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\n"
        f"admins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\n"
        f"rules: {{files: {rule_files}}}\n"
        "polling: {allow_private_urls: true, timeout: 5, backlog: {max_items: 100, max_age: null}}\n"
        "digest: {time: '09:00', timezone: Asia/Seoul}\n"
        f"feeds:\n  - {{url: '{feed_url}', name: '{name}', lang: ru}}\n"
        f"subscriptions:\n{subs}",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def clock() -> list[datetime]:
    return [START]


@asynccontextmanager
async def start(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, clock: list[datetime], mode: str, fault: Fault
) -> AsyncIterator[tuple[Application, BotState]]:  # type: ignore[type-arg]
    httpserver.expect_request("/feed.xml").respond_with_data(feed_xml(fault.huge), content_type="application/rss+xml")
    config = write_config(tmp_path, emu, httpserver.url_for("/feed.xml"), mode, fault.huge)
    async with running_app(config, TOKEN, clock[0]) as (app, state):
        state.clock = lambda: clock[0]
        assert state.sender is not None
        state.sender.pacer = ChatPacer(0.0, 0.0)  # pacing has its own test; here it would only add sleeps
        state.sender.backoff = 0.0
        yield app, state


def marks(messages: list[SentMessage]) -> Counter[str]:
    return Counter(m for message in messages for m in MARK.findall(visible(message)))


def visible(message: SentMessage) -> str:
    return parse_html(message.text) if message.parse_mode == "HTML" else message.text


def assert_complete(emu: BotApiEmulator, chat: int, fault: Fault, *, also: int | None = None) -> None:
    """``chat`` (with ``also``, the id it migrated to) got every expected item exactly once."""
    messages = emu.sent(chat) + (emu.sent(also) if also is not None else [])
    got = marks(messages)
    assert set(got) == expected_marks(fault), f"chat {chat} is missing {sorted(expected_marks(fault) - set(got))}"
    assert max(got.values()) == 1, f"chat {chat} got items twice: {[m for m, n in got.items() if n > 1]}"


def assert_short(emu: BotApiEmulator) -> None:
    for message in emu.sent():
        assert len(visible(message)) <= 4096


def inject(emu: BotApiEmulator, fault: Fault, *, after: int) -> None:
    if fault.kind is not None:
        emu.fail_next(
            "sendMessage",
            fault.kind,
            chat_id=FAULTY,
            times=fault.times,
            retry_after=fault.retry_after,
            new_chat_id=MIGRATED_TO,
            after=after,
        )


def summary(emu: BotApiEmulator, case: str, mode: str) -> str:
    faulty = emu.sent(FAULTY) + emu.sent(MIGRATED_TO)
    longest = max(len(visible(m)) for m in emu.sent())
    return (
        f"Telegram fault {case} ({mode}): faulty chat {len(marks(faulty))} items in {len(faulty)} messages, "
        f"other chats {len(marks(emu.sent(OK_PRIVATE)))} and {len(marks(emu.sent(OK_OTHER)))} items; "
        f"longest message {longest} characters"
    )


def assert_paused_and_resume(emu: BotApiEmulator, state: BotState, fault: Fault, now: datetime) -> None:
    """After a 403: the chat is paused and the admins told; then someone adds the bot back."""
    if fault.kind == "403":
        sub = state.store.subscription(FAULTY)
        assert sub is not None and sub.paused, "a chat that kicked the bot is paused"
        assert any("paused" in m.text and str(FAULTY) in m.text for m in emu.sent(ADMIN)), "the admins are told"
        state.store.set_paused(FAULTY, False, None, now)


def assert_faulty_chat_outcome(emu: BotApiEmulator, state: BotState, fault: Fault) -> None:
    if fault.kind == "migrate":
        assert state.store.subscription(FAULTY) is None and state.store.subscription(MIGRATED_TO) is not None
        assert_complete(emu, FAULTY, fault, also=MIGRATED_TO)
    else:  # a 403'd chat too, once it is back: what arrived before the 403 is not sent again
        assert_complete(emu, FAULTY, fault)
    if fault.kind == "400_entities":
        assert any(m.parse_mode is None for m in emu.sent(FAULTY)), "the refused message went again as plain text"


@pytest.mark.parametrize("case", list(CASES))
async def test_instant_alerts_survive_one_chat_failing(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    clock: list[datetime],
    case: str,
    figure: Callable[[str], None],
) -> None:
    fault = CASES[case]
    inject(emu, fault, after=0)
    async with start(tmp_path, emu, httpserver, clock, "instant", fault) as (app, state):
        await run_poll(app)
        for chat in (OK_PRIVATE, OK_OTHER):
            assert_complete(emu, chat, fault)  # in the same cycle
        if fault.later:
            assert emu.sent(FAULTY) == []
        elif fault.kind not in ("403", "migrate"):
            assert_complete(emu, FAULTY, fault)
        if fault.kind == "429":
            clock[0] += timedelta(seconds=fault.retry_after - 1)
            async with state.lock:
                await run_deliver_locked(app)
            assert emu.sent(FAULTY) == [], "retry_after is honoured"
        for _ in range(4):  # later deliver jobs, past any back-off
            clock[0] += timedelta(minutes=2)
            async with state.lock:
                await run_deliver_locked(app)
        assert_paused_and_resume(emu, state, fault, clock[0])
        await run_poll(app)
        assert_faulty_chat_outcome(emu, state, fault)
        for chat in (OK_PRIVATE, OK_OTHER):
            assert_complete(emu, chat, fault)
        assert_short(emu)
        figure(summary(emu, case, "instant"))


@pytest.mark.parametrize("case", list(CASES))
async def test_digests_survive_one_chat_failing(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    clock: list[datetime],
    case: str,
    figure: Callable[[str], None],
) -> None:
    fault = CASES[case]
    inject(emu, fault, after=1)  # the fault hits the digest's second message
    async with start(tmp_path, emu, httpserver, clock, "digest", fault) as (app, state):
        await run_poll(app)
        await run_digests(app)
        assert emu.sent(OK_PRIVATE) == [], "not 09:00 in Seoul yet"
        clock[0] += timedelta(hours=1, minutes=1)
        await run_digests(app)
        for chat in (OK_PRIVATE, OK_OTHER):
            assert len(emu.sent(chat)) >= 2, "the digest needs more than one message"
            assert_complete(emu, chat, fault)
        if fault.later:
            assert len(emu.sent(FAULTY)) == 1, "the first message arrived, the second waits"
        elif fault.kind not in ("403", "migrate"):
            assert_complete(emu, FAULTY, fault)
        if fault.kind == "429":
            clock[0] += timedelta(seconds=fault.retry_after - 1)
            await run_digests(app)
            assert len(emu.sent(FAULTY)) == 1, "retry_after is honoured"
        for _ in range(4):
            clock[0] += timedelta(minutes=2)
            await run_digests(app)
        assert_paused_and_resume(emu, state, fault, clock[0])
        await run_digests(app)
        assert_faulty_chat_outcome(emu, state, fault)
        for chat in (OK_PRIVATE, OK_OTHER):
            assert_complete(emu, chat, fault)
        assert_short(emu)
        figure(summary(emu, case, "digest"))

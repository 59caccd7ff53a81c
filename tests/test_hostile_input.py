"""Hostile input: strangers, hostile rules and YAML, oversized messages, SSRF URLs, markup in feeds, and
the bot token kept out of logs. The bot runs in-process against the Bot API emulator."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from chat.commands import COMMANDS
from chat.handlers import ACCESS, HANDLERS
from chat.limits import CommandLimits
from core.config import FeedConfig
from core.errors import RuleError
from core.models import MAX_TEXT, Hit, Item, Match
from delivery.redact import install_token_redaction
from rules import parse_rule_text
from service.app import run_digests, run_poll
from service.state import BotState
from store import ProcessedItem
from tests.running import running_app, running_bot
from tgemu import BotApiEmulator
from tgemu.server import SentMessage, parse_html
from watchers.fetch import check_url_allowed

REPO = Path(__file__).resolve().parents[1]
TOKEN = "6060606:HOSTILE-secret-token-xyz"
ADMIN, STRANGER, GROUP_ADMIN = 42, 9, 8
GROUP, CHANNEL = -200, "@dprk_watch"
NOW = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)  # 08:00 in Seoul
RU_FEED = (REPO / "examples" / "feeds" / "ru-politics.xml").read_bytes()


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for user in (ADMIN, STRANGER, 100, 300):
            e.add_chat(user, "private")
        e.add_chat(GROUP, "supergroup", "Desk")
        e.set_member(GROUP, GROUP_ADMIN, "administrator")
        e.set_member(GROUP, STRANGER, "member")
        e.add_chat(CHANNEL, "channel", "DPRK watch", "dprk_watch")
        e.set_member(CHANNEL, STRANGER, "member")
        yield e


def write_config(
    tmp_path: Path, emu: BotApiEmulator, *, allow_private: bool = False, feeds: str = "", subscriptions: str = ""
) -> Path:
    rules = tmp_path / "rules"
    if not rules.exists():
        rules.mkdir()
        shutil.copy(REPO / "rules" / "dprk_russia.yaml", rules / "dprk_russia.yaml")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}', base_file_url: '{emu.base_file_url}'}}\n"
        f"admins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\n"
        f"rules: {{files: ['{rules}/*.yaml']}}\n"
        f"polling: {{allow_private_urls: {str(allow_private).lower()}, timeout: 5,"
        " backlog: {max_items: 100, max_age: null}}\n"
        "digest: {time: '09:00', timezone: Asia/Seoul}\n"
        + (feeds or "feeds: []\n")
        + (
            subscriptions
            or f"subscriptions:\n  - {{chat: {GROUP}, mode: both}}\n  - {{chat: '{CHANNEL}', mode: digest}}\n"
        ),
        encoding="utf-8",
    )
    return config


@pytest.fixture
async def bot(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[BotState]:
    async with running_bot(write_config(tmp_path, emu), TOKEN, NOW) as state:
        yield state


async def say(emu: BotApiEmulator, chat: Any, user: int, text: str) -> SentMessage:
    """Send as a user and wait (off the event loop, where the bot runs) for the bot's reply."""
    before = len(emu.sent(chat))
    emu.user_sends(chat, user, text)
    replies = await asyncio.to_thread(emu.wait_for, chat, before + 1, 10)
    assert len(replies) > before, f"no reply to {text[:80]!r}"
    return replies[-1]


async def send_document(
    emu: BotApiEmulator, user: int, data: bytes, caption: str, *, declare_size: bool = True
) -> SentMessage:
    before = len(emu.sent(user))
    emu.user_sends_document(user, user, "rule.yaml", data, caption=caption, declare_size=declare_size)
    replies = await asyncio.to_thread(emu.wait_for, user, before + 1, 10)
    assert len(replies) > before, f"no reply to a document captioned {caption!r}"
    return replies[-1]


def visible(message: SentMessage) -> str:
    return parse_html(message.text) if message.parse_mode == "HTML" else message.text


def snapshot(state: BotState, rule_dir: Path) -> dict[str, Any]:
    """Every rule file byte for byte, and the rows a command could change."""
    out: dict[str, Any] = {p.name: p.read_bytes() for p in sorted(rule_dir.iterdir())}
    for table in ("subscriptions", "feeds", "rule_history", "outbox", "chat_settings"):
        out[table] = state.store.conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall()
    return out


# -- strangers ---------------------------------------------------------------------------------------

# Arguments that would change something if the access check let them through; a command missing here
# is still tried, bare.
SAMPLE_ARGS = {
    "subscribe": " dprk_in_kursk instant",
    "unsubscribe": "",
    "digest_time": " 10:30 Europe/Moscow",
    "mute": " 8h",
    "digest_now": "",
    "rule": " dprk_in_kursk",
    "rule_add": "\nname: stranger_rule\nall: [DPRK, RUSSIA]\n",
    "rule_edit": " dprk_in_kursk\nall: [DPRK]\n",
    "rule_delete": " dprk_in_kursk",
    "alias_add": " DPRK Пэктусан",
    "alias_remove": " KURSK Kursk",
    "undo": "",
    "feed_add": " http://127.0.0.1:9/feed.xml",
    "feed_remove": " https://news.example/rss",
    "language": " ru",
}


def restricted() -> list[tuple[str, str]]:
    assert set(HANDLERS) == {name for name, _, _ in COMMANDS}, "every listed command has a handler"
    return [(name, ACCESS[HANDLERS[name]]) for name, _, _ in COMMANDS if ACCESS[HANDLERS[name]] != "anyone"]


def test_the_restricted_commands_are_the_mutating_ones() -> None:
    names = {name for name, _ in restricted()}
    assert {"subscribe", "unsubscribe", "digest_time", "mute", "digest_now", "rule_add", "rule_edit"} <= names
    assert {"rule_delete", "alias_add", "alias_remove", "undo", "feed_add", "feed_remove", "language"} <= names
    assert not names & {"start", "help", "test", "rules"}


async def test_a_stranger_can_change_nothing(emu: BotApiEmulator, bot: BotState, tmp_path: Path) -> None:
    rule_dir = tmp_path / "rules"
    rule_file = rule_dir / "dprk_russia.yaml"
    bot.store.add_feed("https://news.example/rss", "News", "en", 900, "config", NOW)
    bot.store.push_rule_version(str(rule_file), rule_file.read_text(encoding="utf-8"), "seed", "42", NOW)
    before = snapshot(bot, rule_dir)
    bot.limits = CommandLimits(burst=100)  # every command twice exceeds the default burst; access is tested here
    tried = 0
    for name, access in restricted():
        text = f"/{name}{SAMPLE_ARGS.get(name, '')}"
        if access == "manage":  # in a group they are only a member of, and naming a channel from their own chat
            for chat, command in ((GROUP, text), (STRANGER, f"{text.split(chr(10))[0]} {CHANNEL}")):
                reply = await say(emu, chat, STRANGER, command)
                assert reply.text.startswith("⛔ Only administrators of") and "Nothing was changed" in reply.text
                tried += 1
        else:
            reply = await say(emu, STRANGER, STRANGER, text)
            assert reply.text == "⛔ Only the bot's admins may use this command.", (text, reply.text)
            tried += 1
    assert tried >= len(SAMPLE_ARGS)
    assert snapshot(bot, rule_dir) == before
    assert bot.proposals == {}, "no rule edit is even proposed"
    assert "Subscribed" in (await say(emu, GROUP, GROUP_ADMIN, "/subscribe instant")).text, "admins still get in"
    assert snapshot(bot, rule_dir) != before, "and the snapshot sees their change"


# -- rules: regexes and YAML -------------------------------------------------------------------------

REDOS_RULES = """\
version: 1
groups:
  A:
    aliases:
      - re: '(a+)+$'
  B:
    aliases:
      - re: '(x+x+)+y'
rules:
  - name: redos
    any: [A, B]
"""


def test_catastrophic_regexes_run_in_linear_time(figure: Callable[[str], None]) -> None:
    """A backtracking engine would never return (the suite's per-test timeout fails it); RE2 is linear."""
    ruleset = parse_rule_text(REDOS_RULES, "redos.yaml")
    for hostile in ("a" * (MAX_TEXT - 1) + "!", "x" * 50_000):  # matching reads MAX_TEXT characters
        started = time.perf_counter()
        assert ruleset.match_text(hostile, hostile) == []
        figure(f"hostile regex on {len(hostile):,} characters: {(time.perf_counter() - started) * 1000:.0f} ms")
    assert ruleset.match_text("a" * MAX_TEXT, "")[0].rule == "redos"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=a)b", r"(?<!a)b"])
def test_regexes_that_need_backtracking_are_refused_at_load(pattern: str) -> None:
    with pytest.raises(RuleError, match="RE2"):
        parse_rule_text(REDOS_RULES.replace("(x+x+)+y", pattern), "bad.yaml")


BILLION_LAUGHS = "\n".join(
    ["name: lol", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi", strict=True)]
)


async def test_yaml_bombs_and_tags_are_refused_and_nothing_is_written(
    emu: BotApiEmulator, bot: BotState, tmp_path: Path
) -> None:
    rule_dir = tmp_path / "rules"
    pwned = tmp_path / "pwned"
    before = snapshot(bot, rule_dir)
    cases = {
        BILLION_LAUGHS: "aliases (*name) are not allowed",
        f'name: x\nall: !!python/object/apply:os.system ["touch {pwned}"]': "could not determine a constructor",
        f"!!python/object/apply:os.system\nargs: ['touch {pwned}']": "could not determine a constructor",
        "name: x\nall: !custom [DPRK]": "could not determine a constructor",
    }
    for snippet, problem in cases.items():
        for reply in (
            await say(emu, ADMIN, ADMIN, f"/rule_add\n{snippet}"),
            await send_document(emu, ADMIN, snippet.encode(), "/rule_add"),
        ):
            assert reply.text.startswith("⚠️") and problem in visible(reply), visible(reply)
            assert reply.reply_markup is None
    deep = "name: deep\nall: " + "[" * 5000 + "]" * 5000
    reply = await send_document(emu, ADMIN, deep.encode(), "/rule_add")
    assert "nested too deeply" in reply.text
    assert not pwned.exists()
    assert snapshot(bot, rule_dir) == before
    assert bot.proposals == {}


async def test_a_megabyte_message_or_document_is_refused_and_the_bot_keeps_working(
    emu: BotApiEmulator, bot: BotState, tmp_path: Path
) -> None:
    rule_dir = tmp_path / "rules"
    before = snapshot(bot, rule_dir)
    megabyte = "name: big\nall: [DPRK]\n" + "# padding padding padding\n" * 40_000
    assert len(megabyte) > 1_000_000
    assert (await say(emu, ADMIN, ADMIN, f"/rule_add\n{megabyte}")).text == "That message is too long."
    assert (await say(emu, ADMIN, ADMIN, "/test " + "КНДР " * 200_000)).text == "That message is too long."
    reply = await send_document(emu, ADMIN, megabyte.encode(), "/rule_add")
    assert "over 100 kB; nothing was changed" in reply.text
    cyrillic = ("name: я\n" + "# " + "я" * 500_000).encode()  # 1 MB, its size not declared
    reply = await send_document(emu, ADMIN, cyrillic, "/rule_add", declare_size=False)
    assert "over 100 kB; nothing was changed" in reply.text
    assert snapshot(bot, rule_dir) == before
    assert "/subscribe" in (await say(emu, ADMIN, ADMIN, "/help")).text


# -- SSRF --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("allow_private", [False, True])
async def test_feed_add_refuses_private_addresses_unless_allowed(
    emu: BotApiEmulator, tmp_path: Path, httpserver: HTTPServer, allow_private: bool
) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    local = httpserver.url_for("/ru.xml")
    port = httpserver.port
    private = [
        "http://10.0.0.5/feed.xml",
        "http://169.254.169.254/latest/meta-data/",
        f"http://[::ffff:127.0.0.1]:{port}/ru.xml",
        f"http://localhost:{port}/ru.xml",
        "http://0.0.0.0/feed.xml",
        "http://[::1]:9/feed.xml",
    ]
    config = write_config(tmp_path, emu, allow_private=allow_private)
    async with running_bot(config, TOKEN, NOW) as state:
        reply = await say(emu, ADMIN, ADMIN, "/feed_add file:///etc/passwd")
        assert "is not an http(s) URL" in reply.text, "local files are never added from chat"
        if not allow_private:
            for url in [local, *private]:
                reply = await say(emu, ADMIN, ADMIN, f"/feed_add {url}")
                assert reply.text.startswith("❌ Not added") and "private or local address" in reply.text, url
            reply = await say(emu, STRANGER, STRANGER, "/test http://169.254.169.254/latest/meta-data/")
            assert "private or local address" in reply.text, "/test fetches under the same guard"
            assert state.store.all_feeds() == []
        else:
            assert "✅ Added" in (await say(emu, ADMIN, ADMIN, f"/feed_add {local} Local")).text
            assert [f.url for f in state.store.all_feeds()] == [local]
            for url in private:  # the guard lets them through (not fetched here: tests talk to 127.0.0.1 only)
                assert await check_url_allowed(url, True) is None
            reply = await say(emu, ADMIN, ADMIN, "/feed_add http://127.0.0.1:9/feed.xml")
            assert reply.text.startswith("❌ Not added") and "private" not in reply.text  # fetched, nothing there


# -- markup from feeds -------------------------------------------------------------------------------

HOSTILE_ITEMS = [
    # (title, summary) as the feed carries them, and what the user must see literally: a feed's title and
    # description are HTML, so one level of escaping is markup (dropped) and a second one is text
    (
        "Шойгу прибыл в Пхеньян для переговоров о военном сотрудничестве: "
        "&amp;lt;b&amp;gt;not bold&amp;lt;/b&amp;gt; 1 &amp;lt; 2 &lt;i&gt;markup&lt;/i&gt;",
        '<![CDATA[Раунд <b>bold</b> <a href="javascript:alert(1)">click</a> &amp;lt;script&amp;gt; x < y & z]]>',
        ["<b>not bold</b>", "1 < 2", "&lt;script&gt;", "x < y & z"],
    ),
    (
        "<![CDATA[КНДР передала России снаряды для военных: x < y > z & <i]]>",
        "<![CDATA[unclosed <b>tag and <tg-spoiler> <unknown> &amp;amp;]]>",
        ["x < y > z & <i", "&amp;"],
    ),
]


def hostile_feed() -> bytes:
    published = NOW - timedelta(hours=1)
    body = "".join(
        f"<item><title>{title}</title><link>javascript:alert({n})</link><guid>h{n}</guid>"
        f"<pubDate>{format_datetime(published + timedelta(minutes=n))}</pubDate>"
        f"<description>{summary}</description></item>"
        for n, (title, summary, _) in enumerate(HOSTILE_ITEMS)
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>&lt;b&gt;Evil&lt;/b&gt;</title>"
        f"<link>https://evil.example/</link><language>ru</language>{body}</channel></rss>"
    ).encode()


async def test_markup_in_feed_items_arrives_as_literal_text(
    emu: BotApiEmulator, tmp_path: Path, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/evil.xml").respond_with_data(hostile_feed(), content_type="application/rss+xml")
    feeds = f"feeds:\n  - {{url: '{httpserver.url_for('/evil.xml')}', name: 'Evil <b>&amp; Co', lang: ru}}\n"
    subs = "subscriptions:\n  - {chat: 100, mode: instant}\n  - {chat: 300, mode: digest}\n"
    config = write_config(tmp_path, emu, allow_private=True, feeds=feeds, subscriptions=subs)
    clock = [NOW]
    async with running_app(config, TOKEN, NOW) as (app, state):
        state.clock = lambda: clock[0]
        await run_poll(app)
        clock[0] += timedelta(hours=1, minutes=1)
        await run_digests(app)
        stored = state.store.recent_items(NOW - timedelta(days=1))
    alerts, digest = emu.sent(100), emu.sent(300)
    assert len(alerts) == len(HOSTILE_ITEMS) and digest
    for message in alerts + digest:
        assert message.parse_mode == "HTML", "accepted as HTML the first time, not resent as plain text"
        assert "javascript:" not in message.text
        assert "Evil <b>&amp; Co" in visible(message), "the feed name is text too"
    for (_, _, literal), alert in zip(HOSTILE_ITEMS, sorted(alerts, key=lambda m: m.message_id), strict=True):
        for text in literal:
            assert text in visible(alert), (text, visible(alert))
    assert len(stored) == len(HOSTILE_ITEMS)
    for item in stored:  # what the parser made of each item reaches the user verbatim
        assert any(item.title in visible(alert) and item.summary in visible(alert) for alert in alerts), item.title
    seen = "\n".join(visible(m) for m in digest)
    assert "<b>not bold</b>" in seen and "x < y > z & <i" in seen


async def test_markup_in_commands_is_echoed_as_text(emu: BotApiEmulator, bot: BotState) -> None:
    reply = await say(emu, STRANGER, STRANGER, "/subscribe <b>x</b> <a href='javascript:1'>y")
    assert reply.parse_mode == "HTML" and "Unknown rule(s): <b>x</b>, <a, href='javascript:1'>y" in visible(reply)
    reply = await say(emu, STRANGER, STRANGER, "/test <i>КНДР</i> & Россия: военные <b")
    assert reply.parse_mode == "HTML" and visible(reply)


# -- the token ---------------------------------------------------------------------------------------


async def test_the_token_never_reaches_logs_or_replies(
    emu: BotApiEmulator, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    root_stream = io.StringIO()
    root_handler = logging.StreamHandler(root_stream)
    root_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(root_handler)
    redactor = install_token_redaction(TOKEN)
    try:
        subs = f"subscriptions:\n  - {{chat: 100, mode: instant}}\n  - {{chat: {GROUP}, mode: instant}}\n"
        config = write_config(tmp_path, emu, subscriptions=subs)
        async with running_app(config, TOKEN, NOW) as (app, state):
            assert state.sender is not None
            state.sender.backoff = 0.0
            feed = FeedConfig("https://news.example/rss", "News", "en", 600)
            state.store.sync_feeds([feed], NOW)
            feed_id = state.store.feed_by_url(feed.url).id  # type: ignore[union-attr]
            match = Match("dprk_russia_military", "instant", (Hit("DPRK", "title", 0, 11, "North Korea"),))
            items = [Item(feed.url, f"x{n}", f"North Korea sends troops {n}", "", None, NOW, "en") for n in range(2)]
            state.store.commit_poll(
                feed_id,
                NOW,
                ok=True,
                etag=None,
                last_modified=None,
                error=None,
                next_poll_at=NOW + timedelta(days=1),
                items=[ProcessedItem(item, (match,), True) for item in items],
            )
            emu.fail_next("sendMessage", "reset", chat_id=100, times=10)  # the network fails
            emu.fail_next("sendMessage", "401", chat_id=GROUP)  # Telegram refuses the token
            emu.fail_next("sendMessage", "404", chat_id=GROUP)
            emu.fail_next("getUpdates", "reset", times=2)
            await run_poll(app)
            await run_poll(app)

            def boom(user_id: int | None) -> str:  # a library error that quotes a request URL
                raise RuntimeError(f"request to {emu.base_url}{TOKEN}/getMe failed")

            monkeypatch.setattr("chat.commands.help_text", boom)
            emu.user_sends(STRANGER, STRANGER, "/help")
            for _ in range(200):  # the command wrapper logs the failure (with its traceback) and answers
                if any("command_failed" in r.getMessage() for r in caplog.records):
                    break
                await asyncio.sleep(0.05)
        logged = "\n".join(
            [caplog.text, root_stream.getvalue()]
            + [r.getMessage() for r in caplog.records]
            + [r.exc_text or "" for r in caplog.records]
        )
        assert any("command_failed" in r.getMessage() for r in caplog.records), "the handler exception was logged"
        assert "<redacted>" in logged, "the token did reach the logging calls (request URLs), and was replaced"
        assert TOKEN not in logged
        assert not any(TOKEN in m.text for m in emu.sent()), "nor in anything the bot sent"
    finally:
        logging.getLogger().removeHandler(root_handler)
        for handler in logging.getLogger().handlers:
            handler.removeFilter(redactor)


# -- long replies ------------------------------------------------------------------------------------


async def replies_until_help(emu: BotApiEmulator, user: int, text: str) -> list[SentMessage]:
    """Every reply to ``text``: updates are handled in order, so they are the messages before /help's."""
    before = len(emu.sent(user))
    emu.user_sends(user, user, text)
    emu.user_sends(user, user, "/help")
    for _ in range(200):
        sent = emu.sent(user)[before:]
        if sent and "/subscribe" in sent[-1].text and "Your Telegram user id" in sent[-1].text:
            return sent[:-1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"/help after {text!r} never answered")


async def test_long_replies_are_split_not_refused(emu: BotApiEmulator, bot: BotState) -> None:
    urls = [f"https://feeds.example/{n}/" + "section/" * 8 + "rss.xml" for n in range(80)]
    for n, url in enumerate(urls):
        bot.store.add_feed(url, f"Feed <{n}>", "ru", 900, "chat:42", NOW)
    for n in range(150):
        bot.store.upsert_subscription(-1000000 - n, NOW, mode="digest", rules=(), chat_title=f"Desk & {n}")
    listing = await replies_until_help(emu, ADMIN, "/feeds")
    assert len(listing) > 1
    text = "\n".join(visible(m) for m in listing)
    assert all(url in text for url in urls) and "Feed <79>" in text
    subscriptions = await replies_until_help(emu, ADMIN, "/subscriptions")
    assert len(subscriptions) > 1 and "Desk & 149" in "\n".join(visible(m) for m in subscriptions)
    for message in listing + subscriptions:
        assert message.parse_mode == "HTML" and len(visible(message)) <= 4096
    reply = await say(emu, ADMIN, ADMIN, "/feed_add https://feeds.example/new.xml " + "Name " * 500)
    assert "name is over" in reply.text
    assert len(bot.store.all_feeds()) == 80


def test_a_long_pre_reply_is_split_into_valid_parts() -> None:
    from chat.handlers import split_reply
    from delivery.render import escape

    lines = [escape(f"- alias {n} <x> & y " * 3) for n in range(400)] + ["z" * 9000]
    parts = split_reply("<pre>" + "\n".join(lines) + "</pre>")
    assert len(parts) > 3
    for part in parts:
        assert part.startswith("<pre>") and part.endswith("</pre>")
        assert len(parse_html(part)) <= 4096  # and it parses: tags and entities are whole
    shown = "\n".join(parse_html(p) for p in parts)
    assert "- alias 399 <x> & y" in shown and "zzz…" in shown


@pytest.mark.parametrize("telegram", ["rejects the token", "is unreachable"])
def test_a_bad_start_says_why_without_the_token(tmp_path: Path, telegram: str) -> None:
    with BotApiEmulator("1:another-bots-token") as emu:  # this Telegram knows no such token: 404, like a revoked one
        config = write_config(tmp_path, emu, subscriptions="subscriptions: []\n")
        if telegram == "is unreachable":
            text = config.read_text(encoding="utf-8").replace(emu.base_url, "http://127.0.0.1:9/bot")
            config.write_text(text, encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, str(REPO / "bot.py"), "--config", str(config), "run"],
            cwd=REPO,
            env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    expected = "Telegram rejected the token" if telegram == "rejects the token" else "cannot reach Telegram"
    assert last.startswith("error: ") and expected in last
    assert TOKEN not in proc.stdout + proc.stderr

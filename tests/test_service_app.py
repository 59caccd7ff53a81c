"""The running bot against the Bot API emulator: what chats actually receive."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from chat.commands import COMMANDS
from cli.digest import print_digest
from core.config import load_config
from service.app import build_application, post_init, post_shutdown, prepare, run_digests, run_poll
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "987654:E2E-secret-token"
RU_FEED = (REPO / "examples" / "feeds" / "ru-politics.xml").read_bytes()
SEED_TITLE = "В КНДР сообщили о новых военных переговорах с Россией"


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for chat, kind in ((100, "private"), (-200, "supergroup"), (300, "private"), (42, "private")):
            e.add_chat(chat, kind)
        yield e


def write_config(tmp_path: Path, emu: BotApiEmulator, feeds: list[tuple[str, str]], subscriptions: str) -> Path:
    feed_lines = "\n".join(f"  - {{url: '{url}', name: '{name}', lang: ru}}" for url, name in feeds)
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            telegram: {{base_url: '{emu.base_url}'}}
            admins: [42]
            storage: {{path: '{tmp_path / "bot.sqlite3"}'}}
            rules: {{files: ['{REPO / "rules"}/*.yaml']}}
            polling: {{allow_private_urls: true, timeout: 5, backlog: {{max_items: 100, max_age: null}}}}
            digest: {{time: '09:00', timezone: Asia/Seoul}}
            """
        )
        + f"feeds:\n{feed_lines}\n"
        + subscriptions,
        encoding="utf-8",
    )
    return path


def test_run_delivers_an_instant_alert_within_one_cycle_and_stops_on_sigterm(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/ru.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    config = write_config(
        tmp_path, emu, [(httpserver.url_for("/ru.xml"), "РБК")], "subscriptions:\n  - {chat: 100, mode: instant}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), "run"],
        cwd=REPO,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = emu.wait_for(100, 2, timeout=30)
        assert sent, "no alert arrived"
        texts = [m.text for m in sent]
        assert any(SEED_TITLE in t for t in texts)
        assert not any("баллистическую ракету" in t.split("\n")[0] for t in texts), "the teaser must not alert"
        assert all(m.parse_mode == "HTML" for m in sent)
        assert [c["command"] for c in emu.commands] == [name for name, _, _ in COMMANDS]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert TOKEN not in out + err, "the token must never be logged"


def test_against_a_server_without_long_polling_the_bot_asks_for_updates_about_once_a_second(
    tmp_path: Path, emu: BotApiEmulator
) -> None:
    emu.long_polling = False  # getUpdates answers at once, whatever the timeout: PTB's default loop spins
    config = write_config(tmp_path, emu, [], "")
    config.write_text(config.read_text(encoding="utf-8").replace("feeds:\n", "feeds: []\n"), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), "run"],
        cwd=REPO,
        env={**os.environ, "TELEGRAM_BOT_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not [t for t, method, _ in emu.requests if method == "getUpdates"] and time.monotonic() < deadline:
            time.sleep(0.05)
        polls = [t for t, method, _ in emu.requests if method == "getUpdates"]
        assert polls, "the bot never polled"
        time.sleep(3.2)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    polls = [t for t, method, _ in emu.requests if method == "getUpdates" and polls[0] <= t <= polls[0] + 3.0]
    assert len(polls) <= 5, f"{len(polls)} getUpdates in 3 s"  # poll_interval 1 s: 3-4; without it: dozens
    assert proc.returncode == 0, err


@pytest.fixture
def clock() -> list[datetime]:
    return [datetime(2026, 5, 1, 23, 0, tzinfo=UTC)]  # 08:00 in Seoul


async def start_app(config_path: Path, clock: list[datetime]):  # type: ignore[no-untyped-def]
    state = prepare(load_config(config_path), clock[0])
    assert state is not None
    state.clock = lambda: clock[0]
    state.schedule_jobs = False
    app = build_application(state, TOKEN)
    await app.initialize()
    await post_init(app)
    return app, state


async def stop_app(app) -> None:  # type: ignore[no-untyped-def]
    await post_shutdown(app)
    await app.shutdown()


async def test_digest_arrives_at_local_time_with_one_entry_per_story(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, clock: list[datetime]
) -> None:
    httpserver.expect_request("/a.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    copy = RU_FEED.replace(b"news.example.ru", b"other.example.ru").replace(b"rbc-", b"oth-")
    httpserver.expect_request("/b.xml").respond_with_data(copy, content_type="application/rss+xml")
    config = write_config(
        tmp_path,
        emu,
        [(httpserver.url_for("/a.xml"), "РБК"), (httpserver.url_for("/b.xml"), "ТАСС")],
        "subscriptions:\n  - {chat: 300, mode: digest}\n",
    )
    app, _state = await start_app(config, clock)
    try:
        await run_poll(app)
        await run_digests(app)
        assert emu.sent(300) == [], "08:00 in Seoul: the 09:00 digest is not due yet"
        clock[0] += timedelta(hours=1, minutes=1)
        await run_digests(app)
        (digest,) = emu.sent(300)
        assert digest.link_preview_disabled
        assert digest.text.count(SEED_TITLE) == 1, "the same story from two outlets is one entry"
        entry = digest.text[digest.text.index(SEED_TITLE) :].split("\n\n")[0]
        assert "РБК" in entry and "ТАСС" in entry
        assert "09:01" in digest.text.split("\n")[0]
        await run_digests(app)
        assert len(emu.sent(300)) == 1, "a digest is sent once"
    finally:
        await stop_app(app)


async def test_429_delays_without_loss_and_403_pauses_only_that_chat(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, clock: list[datetime]
) -> None:
    httpserver.expect_request("/a.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    config = write_config(
        tmp_path,
        emu,
        [(httpserver.url_for("/a.xml"), "РБК")],
        "subscriptions:\n  - {chat: 100, mode: instant}\n  - {chat: -200, mode: instant}\n",
    )
    emu.fail_next("sendMessage", "429", chat_id=100, retry_after=3)
    emu.fail_next("sendMessage", "403", chat_id=-200)
    app, state = await start_app(config, clock)
    try:
        await run_poll(app)
        assert emu.sent(100) == [] and emu.sent(-200) == []
        assert state.store.subscription(-200).paused  # type: ignore[union-attr]
        assert any("paused" in m.text for m in emu.sent(42)), "the admin is told"
        expected = len([e for e in state.store.pending_instant(clock[0] + timedelta(seconds=10)) if e.chat_id == "100"])
        assert expected == 2
        clock[0] += timedelta(seconds=1)
        await run_poll(app)
        assert emu.sent(100) == [], "retry_after is honoured"
        clock[0] += timedelta(seconds=3)
        await run_poll(app)
        assert len(emu.sent(100)) == expected, "nothing was lost"
        assert emu.sent(-200) == []
    finally:
        await stop_app(app)


async def test_digest_dry_run_prints_what_would_be_sent(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    clock: list[datetime],
    capsys: pytest.CaptureFixture[str],
) -> None:
    httpserver.expect_request("/a.xml").respond_with_data(RU_FEED, content_type="application/rss+xml")
    config = write_config(
        tmp_path,
        emu,
        [(httpserver.url_for("/a.xml"), "РБК")],
        "subscriptions:\n  - {chat: '@dprk_watch', mode: digest}\n",
    )
    app, _state = await start_app(config, clock)
    try:
        await run_poll(app)
    finally:
        await stop_app(app)
    assert print_digest(load_config(config), chat="@dprk_watch", dry_run=True) == 0
    out = capsys.readouterr().out
    assert out.startswith("--- message 1/1 (parse_mode=HTML, previews off) ---")
    assert SEED_TITLE in out
    assert print_digest(load_config(config), chat="@nobody", dry_run=True) == 1
    assert emu.sent("@dprk_watch") == [], "a dry run sends nothing"


@pytest.mark.parametrize(("retention", "kept"), [("30d", []), ("90d", ["new"]), ("forever", ["old", "new"])])
async def test_the_daily_prune_keeps_text_for_storage_retention(
    emu: BotApiEmulator, tmp_path: Path, retention: str, kept: list[str]
) -> None:
    from types import SimpleNamespace

    from core.config import FeedConfig
    from core.models import Item
    from service.app import _prune_job
    from store import ProcessedItem
    from tests.running import running_app

    now = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
    config = write_config(tmp_path, emu, [], f"storage: {{path: bot.sqlite3, retention: {retention}}}\n")
    config.write_text(
        "\n".join(line for line in config.read_text(encoding="utf-8").splitlines() if "bot.sqlite3'" not in line)
        + "\n",
        encoding="utf-8",
    )
    async with running_app(config, TOKEN, now) as (app, state):
        state.store.sync_feeds([FeedConfig("https://a.example/rss", "A", None, 600)], now)
        feed = state.store.feed_by_url("https://a.example/rss")
        assert feed is not None
        for uid, age in (("old", 100), ("new", 40)):
            at = now - timedelta(days=age)
            state.store.commit_poll(
                feed.id,
                at,
                ok=True,
                etag=None,
                last_modified=None,
                error=None,
                next_poll_at=at,
                items=[ProcessedItem(Item(feed.url, uid, f"Пхеньян {uid}", "", None), (), True)],
            )
        await _prune_job(SimpleNamespace(application=app))  # type: ignore[arg-type]
        texts = state.store.conn.execute("SELECT uid FROM items WHERE title != '' ORDER BY id").fetchall()
        assert [t[0] for t in texts] == kept

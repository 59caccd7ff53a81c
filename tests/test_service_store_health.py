"""The store's health: a corrupt or truncated file is refused at start and reported by ``check``; a store
deleted under the running bot stops polling and sending, turns /healthz to 503, is logged and told once.

Before: ``check`` said OK on a corrupt or truncated store, the bot ran on it (a traceback every poll), and
a deleted store went unnoticed while the bot kept writing to the unlinked file.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from core.config import FeedConfig
from service.app import run_deliver_locked, run_poll
from store import Store, StoreError
from tests.running import running_app
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "31337:HEALTH-token"
ADMIN, CHAT = 42, 100
NOW = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)


def filled_store(path: Path) -> None:
    """A store of several dozen pages, checkpointed into the main file."""
    with Store.open(path) as store:
        store.sync_feeds(
            [FeedConfig(f"https://feed{n}.example/rss", f"Feed {n} " + "x" * 500, None, 3600) for n in range(200)], NOW
        )
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def zero_middle_pages(path: Path) -> None:
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.seek(size // 2 - 4096)
        f.write(b"\0" * 3 * 4096)


def truncate_half(path: Path) -> None:
    os.truncate(path, (path.stat().st_size // 2) // 4096 * 4096)


def not_sqlite(path: Path) -> None:
    path.write_bytes(b"this is a text file, not a database\n" * 300)


DAMAGE: dict[str, Callable[[Path], None]] = {
    "zeroed pages in the middle": zero_middle_pages,
    "truncated": truncate_half,
    "not an SQLite file": not_sqlite,
}


def write_config(tmp_path: Path, emu_url: str, feed_url: str) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu_url}'}}\n"
        f"admins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "polling: {allow_private_urls: true, timeout: 5, backlog: {max_items: 100, max_age: null}}\n"
        f"feeds: [{{url: '{feed_url}', name: Лента, lang: ru}}]\n"
        f"subscriptions: [{{chat: {CHAT}, mode: instant}}]\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_store_is_refused_at_start_and_reported_by_check(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "bot.sqlite3"
    filled_store(path)
    DAMAGE[damage](path)
    with pytest.raises(StoreError, match=str(path)):
        Store.open(path).close()
    config = write_config(tmp_path, "http://127.0.0.1:9/bot", "http://127.0.0.1:9/feed.xml")
    check = subprocess.run(
        [sys.executable, str(REPO / "bot.py"), "--config", str(config), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert check.returncode == 1, check.stdout
    assert str(path) in check.stderr and "Traceback" not in check.stderr
    assert any(word in check.stderr for word in ("corrupt", "truncated", "not an SQLite"))


def test_a_sound_store_passes(tmp_path: Path) -> None:
    path = tmp_path / "bot.sqlite3"
    filled_store(path)
    Store.open(path).close()


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        e.add_chat(ADMIN, "private")
        e.add_chat(CHAT, "private")
        yield e


FEED = (
    "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Лента</title>"
    "<link>https://news.example/</link>"
    "<item><title>Сделка 1100: Шойгу прибыл в Пхеньян для переговоров о военном сотрудничестве</title>"
    "<link>https://news.example/1</link><guid isPermaLink='false'>h-1</guid></item></channel></rss>"
).encode()


async def test_a_store_deleted_under_the_bot_pauses_everything_and_is_told_once(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(FEED, content_type="application/rss+xml")
    config = write_config(tmp_path, emu.base_url, httpserver.url_for("/feed.xml"))
    emu.fail_next("sendMessage", "429", chat_id=CHAT, retry_after=1)  # the alert waits in the outbox
    clock = [NOW]
    async with running_app(config, TOKEN, NOW) as (app, state):
        state.clock = lambda: clock[0]
        await run_poll(app)
        polls = len(httpserver.log)
        (tmp_path / "bot.sqlite3").unlink()
        caplog.set_level(logging.WARNING)
        for _ in range(3):
            clock[0] += timedelta(minutes=1)
            await run_poll(app)
            async with state.lock:
                await run_deliver_locked(app)
        assert emu.sent(CHAT) == [], "nothing is sent that cannot be recorded"
        assert len(httpserver.log) == polls, "no polling into an unlinked file"
        healthy, reason = state.metrics.health(clock[0], 30, 10)
        assert not healthy and "was deleted" in reason and "bot.sqlite3" in reason
        assert sum("Store problem" in m.text and "deleted" in m.text for m in emu.sent(ADMIN)) == 1
        assert sum("store_unhealthy" in r.getMessage() for r in caplog.records) == 1

"""A full disk under the running bot, made real with RLIMIT_FSIZE in a subprocess.

The bot runs in a child process (the emulator and the feed server stay in this one, on 127.0.0.1). Its
alerts are queued while Telegram answers 429; then the child's file-size limit is set to the store's
current size, so every store write fails as on a full disk (SQLite cannot grow its WAL), and it runs
delivery passes; then the limit is lifted and it runs two more. The old code sent the same alerts on
every pass (its record after the send failed); now nothing is sent that cannot be recorded, /healthz
says why, the admins are told once, and delivery resumes by itself with each alert sent once.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "31337:DISK-token"
ADMIN, CHAT = 42, 100
START = datetime(2026, 5, 1, 23, 0, tzinfo=UTC)
FULL_PASSES = 9

CHILD = textwrap.dedent(
    """
    import asyncio, json, resource, signal, sys
    from datetime import datetime, timedelta
    from pathlib import Path

    sys.path.insert(0, sys.argv[1])
    from delivery.sender import ChatPacer
    from service.app import run_deliver_locked, run_poll
    from tests.running import running_app

    config, token, start, passes = Path(sys.argv[2]), sys.argv[3], datetime.fromisoformat(sys.argv[4]), int(sys.argv[5])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us


    async def main() -> None:
        clock = [start]
        out = {}
        async with running_app(config, token, start) as (app, state):
            state.clock = lambda: clock[0]
            state.sender.pacer = ChatPacer(0.0, 0.0)
            await run_poll(app)  # Telegram answers 429: the alerts wait in the outbox

            async def passes_(n):
                for _ in range(n):
                    clock[0] += timedelta(seconds=10)
                    async with state.lock:
                        await run_deliver_locked(app)

            store = Path(state.store.path)
            sizes = [p.stat().st_size for p in (store, Path(f"{store}-wal")) if p.exists()]
            soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
            resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes), hard))  # the disk is full from now on
            await passes_(passes)
            out["health_full"] = state.metrics.health(clock[0], 30, 10)[1]
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space freed
            await passes_(2)
            out["health_after"] = state.metrics.health(clock[0], 30, 10)[1]
            out["states"] = [r[0] for r in state.store.conn.execute("SELECT state FROM outbox ORDER BY id")]
        print(json.dumps(out))


    asyncio.run(main())
    """
)


def feed_xml(count: int) -> bytes:
    published = START - timedelta(hours=1)
    body = "".join(
        f"<item><title>Сделка {1100 + n}: Шойгу прибыл в Пхеньян для переговоров о военном сотрудничестве</title>"
        f"<link>https://news.example/{n}</link><guid isPermaLink='false'>disk-{n}</guid>"
        f"<pubDate>{format_datetime(published + timedelta(minutes=n))}</pubDate></item>"
        for n in range(count)
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Лента</title>"
        f"<link>https://news.example/</link>{body}</channel></rss>"
    ).encode()


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        e.add_chat(ADMIN, "private")
        e.add_chat(CHAT, "private")
        yield e


def test_full_disk_sends_nothing_unrecorded_tells_admins_once_and_resumes(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer, figure: Callable[[str], None]
) -> None:
    httpserver.expect_request("/feed.xml").respond_with_data(feed_xml(3), content_type="application/rss+xml")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\n"
        f"admins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "polling: {allow_private_urls: true, timeout: 5, backlog: {max_items: 100, max_age: null}}\n"
        f"feeds:\n  - {{url: '{httpserver.url_for('/feed.xml')}', name: Лента, lang: ru}}\n"
        f"subscriptions:\n  - {{chat: {CHAT}, mode: instant}}\n",
        encoding="utf-8",
    )
    emu.fail_next("sendMessage", "429", chat_id=CHAT, retry_after=1)
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), str(REPO), str(config), TOKEN, START.isoformat(), str(FULL_PASSES)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    copies = Counter(m for message in emu.sent(CHAT) for m in re.findall(r"Сделка (\d{4})", message.text))
    figure(
        f"full disk: {max(copies.values(), default=0)} copies per alert over {FULL_PASSES} passes on a full disk "
        f"+ 2 after; admins told {sum('Store problem' in m.text for m in emu.sent(ADMIN))}x"
    )
    assert len(copies) == 3, "every alert arrives once the disk has room again"
    assert max(copies.values()) <= 2, f"alerts resent on a full disk: {dict(copies)}"
    assert out["states"] == ["sent"] * 3
    assert "store:" in out["health_full"] and "bot.sqlite3" in out["health_full"], out["health_full"]
    assert "store:" not in out["health_after"]
    assert sum("Store problem" in m.text for m in emu.sent(ADMIN)) == 1, "told once per incident"
    assert sum("can be written again" in m.text for m in emu.sent(ADMIN)) == 1
    assert done.stderr.count("store_unhealthy") == 1, "logged once per incident, not once per pass"

"""A feed that still answers but has nothing new: flagged in /status and /feeds, admins told once per
episode, through a real local feed (answering 304 and 200-with-old-items) and the Bot API emulator."""

from __future__ import annotations

import asyncio
import hashlib
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from core.config import load_config
from service.app import run_poll
from service.quiet import quiet_notices
from tests.running import running_app
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "555:QUIET-token"
ADMIN = 42
START = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


class StaleFeed:
    """An RSS feed whose items the test adds; between additions it alternates 304 (ETag matched) and
    200 with the same old items in full, as a moved feed serving a stale file does."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.hits = 0
        self.answers: list[int] = []

    def add(self, n: int) -> None:
        self.items.append(f"<item><guid>q{n}</guid><title>Погода и курс валют, выпуск {n}</title></item>")

    def __call__(self, request: Request) -> Response:
        self.hits += 1
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Q</title>{"".join(self.items)}</channel></rss>'
        etag = '"' + hashlib.sha1(body.encode()).hexdigest()[:12] + '"'
        if self.hits % 2 and request.headers.get("If-None-Match") == etag:
            self.answers.append(304)
            return Response(status=304, headers={"ETag": etag})
        self.answers.append(200)  # the same old items in full, as if nothing were cached
        return Response(body, content_type="application/rss+xml", headers={"ETag": etag})


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        e.add_chat(ADMIN, "private")
        yield e


def notices(emu: BotApiEmulator) -> list[str]:
    return [m.text for m in emu.sent(ADMIN) if m.text.startswith("Feed quiet")]


async def say(emu: BotApiEmulator, text: str) -> str:
    before = len(emu.sent(ADMIN))
    emu.user_sends(ADMIN, ADMIN, text)
    replies = await asyncio.to_thread(emu.wait_for, ADMIN, before + 1, 10)
    assert len(replies) > before, f"no reply to {text!r}"
    return replies[-1].text


async def test_a_stale_feed_is_flagged_and_admins_are_told_once_per_episode(
    tmp_path: Path, emu: BotApiEmulator, httpserver: HTTPServer
) -> None:
    stale, muted = StaleFeed(), StaleFeed()
    httpserver.expect_request("/stale.xml").respond_with_handler(stale)
    httpserver.expect_request("/muted.xml").respond_with_handler(muted)
    config = tmp_path / "config.yaml"
    config.write_text(
        textwrap.dedent(
            f"""\
            telegram: {{base_url: '{emu.base_url}'}}
            admins: [{ADMIN}]
            storage: {{path: '{tmp_path / "bot.sqlite3"}'}}
            rules: {{files: ['{REPO / "rules"}/*.yaml']}}
            polling: {{allow_private_urls: true, timeout: 5, default_interval: 15m}}
            feeds:
              - {{url: '{httpserver.url_for("/stale.xml")}', name: Stale wire, lang: ru}}
              - {{url: '{httpserver.url_for("/muted.xml")}', name: Weekly, lang: ru, quiet_after: off}}
            """
        ),
        encoding="utf-8",
    )
    clock = [START]
    async with running_app(config, TOKEN, START) as (app, state):
        state.clock = lambda: clock[0]

        async def poll_every(step: timedelta, times: int, publish: bool) -> None:
            for _ in range(times):
                clock[0] += step
                if publish:
                    for feed in (stale, muted):
                        feed.add(len(feed.items))
                await run_poll(app)

        await poll_every(timedelta(hours=2), 12, publish=True)  # history: a new item every 2 h
        assert "quiet" not in await say(emu, "/status")
        await poll_every(timedelta(hours=6), 12, publish=False)  # then 3 days of 304 / 200-with-old-items
        assert {304, 200} <= set(stale.answers[12:]), "the stale phase answered both ways"

        assert len(notices(emu)) == 1, "told once, not on every poll"
        (note,) = notices(emu)
        assert "Stale wire" in note and "quiet for 30 h, usually every 2 h" in note and "Weekly" not in note
        status = await say(emu, "/status")
        assert "🔇 Stale wire: quiet for 3 d, usually every 2 h" in status
        assert "1 OK, 0 failing, 1 quiet" in status, "the feed with quiet_after: off is never flagged"
        listing = await say(emu, "/feeds")
        assert "🔇 Stale wire" in listing and "quiet for 3 d, usually every 2 h" in listing
        assert "✅ Weekly" in listing
        # a restart reads the same flag: still nothing more to tell
        assert quiet_notices(state.store, load_config(config), clock[0]) == []

        await poll_every(timedelta(hours=2), 1, publish=True)  # news again: the episode is over
        assert "quiet" not in await say(emu, "/status") and state.store.quiet_flags() == {}
        await poll_every(timedelta(hours=6), 8, publish=False)  # quiet again for 2 days: a new episode
        assert len(notices(emu)) == 2
        assert "quiet for 30 h, usually every 2 h" in notices(emu)[-1]  # told when it crossed 24 h

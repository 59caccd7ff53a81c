"""No flood after downtime or from a burst: stale alerts fold into one message a chat, a pass sends at most
``delivery.max_instant_per_pass`` alerts and one summary; nothing is dropped (the digest, or the summary
itself for an instant-only chat, carries every item).

Before: down 3 days, every alert went out one by one, the oldest 3 days old, none marked late; a feed that
suddenly yielded many matching items sent one alert per item.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape as xml_escape
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from delivery.sender import ChatPacer
from service.app import run_digests, run_poll
from service.state import BotState
from tests.running import running_app
from tgemu import BotApiEmulator
from tgemu.server import SentMessage, parse_html

REPO = Path(__file__).resolve().parents[1]
TOKEN = "31337:FOLD-token"
BOTH, INSTANT = 100, 300
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)  # 21:00 in Seoul; the digest is at 09:00


def feed(items: list[tuple[int, datetime]]) -> bytes:
    body = "".join(
        f"<item><title>{xml_escape(f'Сделка {n}: Шойгу прибыл в Пхеньян для переговоров о военном сотрудничестве')}"
        f"</title><link>https://news.example/{n}</link><guid isPermaLink='false'>fold-{n}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for n, published in items
    )
    return (
        "<?xml version='1.0' encoding='UTF-8'?><rss version='2.0'><channel><title>Лента</title>"
        f"<link>https://news.example/</link><language>ru</language>{body}</channel></rss>"
    ).encode()


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for chat in (BOTH, INSTANT):
            e.add_chat(chat, "private")
        yield e


@pytest.fixture
def served(httpserver: HTTPServer) -> list[bytes]:
    body = [feed([])]
    httpserver.expect_request("/feed.xml").respond_with_handler(
        lambda _request: Response(body[0], content_type="application/rss+xml")
    )
    return body


def write_config(tmp_path: Path, emu: BotApiEmulator, feed_url: str, store_target: Path | str) -> Path:
    config = tmp_path / "config.yaml"
    storage = f"path: '{store_target}'" if isinstance(store_target, Path) else f"url: '{store_target}'"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\n"
        f"storage: {{{storage}}}\n"
        f"rules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n"
        "polling: {allow_private_urls: true, timeout: 5, default_interval: 5m, "
        "backlog: {max_items: 1000, max_age: null}}\n"
        "digest: {time: '09:00', timezone: Asia/Seoul}\n"
        f"feeds: [{{url: '{feed_url}', name: Лента, lang: ru}}]\n"
        # stories off: these templated items (titles alike but for a number) would be one story, and this
        # file is about folding late and bulk alerts, one message per item otherwise
        f"subscriptions: [{{chat: {BOTH}, mode: both, stories: off}},\n"
        f"  {{chat: {INSTANT}, mode: instant, stories: off}}]\n",
        encoding="utf-8",
    )
    return config


def text(message: SentMessage) -> str:
    return parse_html(message.text) if message.parse_mode == "HTML" else message.text


def items_in(messages: list[SentMessage]) -> set[str]:
    return {n for m in messages for n in re.findall(r"Сделка (\d+)", text(m))}


def digest_states(state: BotState) -> set[str]:
    rows = state.store.conn.execute("SELECT DISTINCT state FROM outbox WHERE kind = 'digest'")
    return {r[0] for r in rows}


async def test_after_three_days_down_the_late_alerts_fold_into_one_message(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    served: list[bytes],
    figure: Callable[[str], None],
    store_target: Path | str,
) -> None:
    config = write_config(tmp_path, emu, httpserver.url_for("/feed.xml"), store_target)
    async with running_app(config, TOKEN, T0) as (app, _state):
        await run_poll(app)  # the bot runs, all quiet; then it is down for three days
    back = T0 + timedelta(days=3)
    late = [(2000 + n, T0 + timedelta(hours=3 * n + 1)) for n in range(20)]  # published while it was down
    fresh = [(3000 + n, back - timedelta(minutes=10 + n)) for n in range(2)]
    served[0] = feed(late + fresh)
    async with running_app(config, TOKEN, back) as (app, state):
        assert state.sender is not None
        state.sender.pacer = ChatPacer(0.0, 0.0)
        await run_poll(app)
        for chat in (BOTH, INSTANT):
            messages = emu.sent(chat)
            assert len(messages) == 3, [text(m)[:80] for m in messages]  # 2 fresh alerts + 1 fold
            fold = [m for m in messages if "While the bot was offline: 20 matching items" in text(m)]
            assert len(fold) == 1
        assert "see the digest" in text(emu.sent(BOTH)[-1])
        assert items_in(emu.sent(INSTANT)) == {str(n) for n, _ in late + fresh}, "instant-only: the fold lists them"
        figure(f"down 3 days, 22 new alerts: {len(emu.sent(INSTANT))} messages per chat (before: 22)")
        state.clock = lambda: back + timedelta(hours=12)  # 09:00 in Seoul
        await run_digests(app)
        assert digest_states(state) == {"sent"}, "the digest carries every item"


async def test_a_burst_sends_the_first_alerts_and_one_summary_for_the_rest(
    tmp_path: Path,
    emu: BotApiEmulator,
    httpserver: HTTPServer,
    served: list[bytes],
    figure: Callable[[str], None],
    store_target: Path | str,
) -> None:
    served[0] = feed([(4000 + n, T0 - timedelta(minutes=n)) for n in range(30)])
    config = write_config(tmp_path, emu, httpserver.url_for("/feed.xml"), store_target)
    async with running_app(config, TOKEN, T0) as (app, state):
        assert state.sender is not None
        state.sender.pacer = ChatPacer(0.0, 0.0)
        await run_poll(app)
        for chat in (BOTH, INSTANT):
            messages = emu.sent(chat)
            assert len(messages) == 11, "10 alerts (delivery.max_instant_per_pass) and one summary"
            assert "20 more matching items" in text(messages[-1])
        assert items_in(emu.sent(INSTANT)) == {str(4000 + n) for n in range(30)}, "nothing dropped"
        assert "see the digest" in text(emu.sent(BOTH)[-1])
        rows = state.store.conn.execute("SELECT DISTINCT state FROM outbox WHERE kind = 'instant'").fetchall()
        assert rows == [("sent",)]
        figure(f"burst of 30 alerts: {len(emu.sent(INSTANT))} messages per chat (before: 30)")
        state.clock = lambda: T0 + timedelta(hours=12)
        await run_digests(app)
        assert digest_states(state) == {"sent"}

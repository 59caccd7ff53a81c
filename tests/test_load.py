"""Load: 1,000 feeds and 50 subscriptions through a simulated day on a fast clock.

The real bot (in-process, against the Bot API emulator) polls 1,000 feeds served from 127.0.0.1 every
simulated hour (ETag/304 when a feed has not changed), matches, queues, and sends instant alerts and 50
daily digests spread over seven time zones. Checked: every digest goes out at the first tick at or after
its local time, each exactly once; the process's memory stays flat (start and end RSS are reported).
"""

from __future__ import annotations

import gc
import os
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import pytest

from delivery.sender import ChatPacer
from service.app import run_digests, run_poll
from tests.feedhttp import FeedServer, Response, ok, rss
from tests.running import running_app
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "777000:LOAD-test-token"
FEEDS = int(os.environ.get("LOAD_FEEDS", "1000"))
SUBSCRIBERS = 50
START = datetime(2026, 6, 1, 0, 0, tzinfo=UTC)
TICK = timedelta(minutes=10)
DAY_TICKS = 24 * 6
ZONES = ("UTC", "Europe/Moscow", "Asia/Seoul", "Asia/Kolkata", "America/New_York", "Asia/Pyongyang", "Europe/Berlin")
TIMES = ("07:00", "08:00", "08:30", "09:15", "12:00", "18:40", "21:00", "23:50")
POSITIVE = (
    "Минобороны России и КНДР обсудили поставки артиллерийских снарядов",
    "Делегация министерства обороны КНДР провела переговоры в Москве о военном сотрудничестве.",
)
NEGATIVE = ("Сборная России по хоккею выиграла товарищеский матч", "Матч прошёл в Москве, болельщики довольны.")


class FeedFarm(FeedServer):
    """1,000 RSS feeds on one local server; feed n gains an item every 6 simulated hours (offset by n)."""

    def __init__(self) -> None:
        super().__init__()
        self.now = START
        self.requests = 0
        self.not_modified = 0

    def url(self, n: int) -> str:
        return f"{self.base_url}/f/{n}.xml"

    def hours(self, n: int) -> list[int]:
        elapsed = int((self.now - START).total_seconds() // 3600)
        return [h for h in range(elapsed + 1) if (h + n) % 6 == 0][-10:]

    def respond(self, path: str, headers: dict[str, str]) -> Response:
        self.requests += 1
        n = int(path.rsplit("/", 1)[-1].removesuffix(".xml"))
        hours = self.hours(n)
        etag = f'"{n}-{len(hours)}"'
        if headers.get("if-none-match") == etag:
            self.not_modified += 1
            return 304, {"ETag": etag}, b""
        entries = []
        for h in reversed(hours):
            title, summary = POSITIVE if (n * 7 + h) % 40 == 0 else NEGATIVE
            entries.append((f"{title} (лента {n}, час {h})", f"https://news.example/{n}/{h}", summary,
                            START + timedelta(hours=h)))  # fmt: skip
        return ok(rss(f"Лента {n}", f"https://news.example/{n}", entries), ETag=etag)


def subscriber(i: int) -> tuple[int, str, str, str]:
    """(chat id, mode, digest time, zone) of subscriber i; one in ten also gets instant alerts."""
    return 5000 + i, "both" if i % 10 == 0 else "digest", TIMES[i % len(TIMES)], ZONES[i % len(ZONES)]


def scheduled_utc(digest_time: str, zone: str) -> datetime:
    """The one local digest time that falls within the simulated day, in UTC."""
    hour, minute = map(int, digest_time.split(":"))
    tz = ZoneInfo(zone)
    local_start = START.astimezone(tz)
    for day in (0, 1):
        at = datetime.combine(local_start.date() + timedelta(days=day), datetime.min.time(), tz).replace(
            hour=hour, minute=minute
        )
        if at.astimezone(UTC) >= START:
            return at.astimezone(UTC)
    raise AssertionError("unreachable")


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for i in range(SUBSCRIBERS):
            e.add_chat(subscriber(i)[0], "private")
        yield e


def write_config(tmp_path: Path, emu: BotApiEmulator, farm: FeedFarm) -> Path:
    feeds = "".join(f"  - {{url: '{farm.url(n)}', name: 'Лента {n}', lang: ru, interval: 1h}}\n" for n in range(FEEDS))
    subs = "".join(
        f"  - {{chat: {chat}, mode: {mode}, digest_time: '{at}', timezone: {zone}}}\n"
        for chat, mode, at, zone in map(subscriber, range(SUBSCRIBERS))
    )
    path = tmp_path / "config.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            telegram: {{base_url: '{emu.base_url}'}}
            storage: {{path: '{tmp_path / "bot.sqlite3"}'}}
            rules: {{files: ['{REPO / "rules"}/*.yaml']}}
            polling: {{allow_private_urls: true, timeout: 10, concurrency: 20}}
            digest: {{send_empty: true}}
            """
        )
        + f"feeds:\n{feeds}subscriptions:\n{subs}",
        encoding="utf-8",
    )
    return path


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_a_simulated_day_of_1000_feeds_and_50_subscriptions(
    tmp_path: Path, emu: BotApiEmulator, figure: Callable[[str], None]
) -> None:
    process = psutil.Process()
    with FeedFarm() as farm:
        async with running_app(write_config(tmp_path, emu, farm), TOKEN, START) as (app, state):
            assert state.sender is not None
            state.sender.pacer = ChatPacer(0.0, 0.0)  # the clock is fast; Telegram's own limiter still applies
            chats = {chat: (at, zone) for chat, _mode, at, zone in map(subscriber, range(SUBSCRIBERS))}
            sent_at: dict[int, list[datetime]] = {chat: [] for chat in chats}
            last = dict.fromkeys(chats)
            rss: list[int] = []
            started = time.monotonic()
            for tick in range(DAY_TICKS + 1):
                now = START + tick * TICK
                farm.now = now
                state.clock = lambda now=now: now  # type: ignore[misc]
                await run_poll(app)
                await run_digests(app)
                for chat in chats:
                    sub = state.store.subscription(str(chat))
                    assert sub is not None
                    if sub.last_digest_at != last[chat]:
                        last[chat] = sub.last_digest_at
                        sent_at[chat].append(now)
                if tick in (12, DAY_TICKS):  # after two simulated hours of warm-up, and at the end
                    gc.collect()
                    rss.append(process.memory_info().rss)
            seconds = time.monotonic() - started
            items = state.store.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0]
            matches = state.store.conn.execute("SELECT COUNT(*) FROM matches").fetchone()[0]

    late = {}
    for chat, (at, zone) in chats.items():
        assert len(sent_at[chat]) == 1, f"chat {chat} ({at} {zone}) got {len(sent_at[chat])} digests: {sent_at[chat]}"
        delay = sent_at[chat][0] - scheduled_utc(at, zone)
        if not timedelta(0) <= delay < TICK:
            late[chat] = (at, zone, delay)
        assert emu.sent(chat), f"chat {chat} received nothing"
    figure(
        f"load: {FEEDS} feeds × {SUBSCRIBERS} subscriptions, simulated day in {seconds:.0f} s: "
        f"{farm.requests} requests ({farm.not_modified} × 304), {items} items, {matches} matches, "
        f"{len(emu.sent())} messages; RSS {rss[0] / 2**20:.0f} MB after 2 h → {rss[1] / 2**20:.0f} MB at 24 h"
    )
    assert not late, f"digests off schedule: {late}"
    assert farm.requests >= FEEDS * 24, "every feed is polled every simulated hour"
    assert rss[1] - rss[0] < 40 * 2**20, f"memory grew by {(rss[1] - rss[0]) / 2**20:.0f} MB over the day"

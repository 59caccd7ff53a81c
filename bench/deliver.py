"""Delivery benchmark: render a 500-match digest, and sustained sending through the emulator.

    python bench/deliver.py [--matches 500] [--messages 300]

Prints: clustering + rendering + splitting time for a digest of N matches (messages produced, visible
characters); then the sustained send rate of the Sender (PTB's Bot over real HTTP to the tgemu Bot API
emulator on 127.0.0.1) with the rate limiter on, spread over many private chats so the overall limit
(30 messages/s) is what binds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("PTB_TIMEDELTA", "true")

from telegram.ext import AIORateLimiter, ApplicationBuilder

from core.models import Hit, Item, Match
from delivery.cluster import Entry
from delivery.digest import build_digest
from delivery.render import visible_length
from delivery.sender import ChatPacer, Sender, Sent
from tgemu import BotApiEmulator

STORIES = [
    ("ru", "КНДР направит в Россию {n} военных строителей", "РИА Новости"),
    ("ru", "Шойгу обсудил в Пхеньяне военное сотрудничество, визит №{n}", "ТАСС"),
    ("en", "North Korea sent {n} shells to Russia, Seoul says", "Reuters"),
    ("en", "Russian delegation {n} meets North Korean defence minister", "NK News"),
    ("ko", "북한, 러시아에 포탄 {n}만발 추가 공급", "연합뉴스"),
    ("ko", "북러 군사협력 {n}차 회의 개최", "KBS"),
]
OUTLETS = ["Интерфакс", "Коммерсантъ", "Yonhap", "BBC", "한겨레", "Daily NK", "AP", "Медуза"]


def synthetic_entries(n: int, seed: int = 7) -> list[Entry]:
    rng = random.Random(seed)
    now = datetime(2026, 5, 1, tzinfo=UTC)
    entries = []
    for i in range(n):
        lang, template, outlet = STORIES[i % len(STORIES)]
        story = i // 3 if rng.random() < 0.3 else i  # ~30 % are the same story from another outlet
        title = template.format(n=story)
        item = Item(
            feed_url=f"https://{i % 9}.example/rss",
            uid=str(i),
            title=title,
            summary=f"{title}. " * 5,
            link=f"https://{i % 9}.example/{i}",
            published=now + timedelta(minutes=rng.randint(0, 1440)),
            lang=lang,
            feed_name=rng.choice([outlet, *OUTLETS]),
        )
        hits = (Hit("DPRK", "title", 0, 4, title.split()[0]), Hit("RUSSIA", "title", 5, 9, "Россия"))
        rule = "dprk_russia_military" if i % 2 else "dprk_russia_context"
        entries.append(Entry(item, (Match(rule, "instant" if i % 2 else "digest", hits),)))
    return entries


def render_benchmark(n: int) -> None:
    entries = synthetic_entries(n)
    started = time.perf_counter()
    chunks = build_digest(
        entries,
        period_start=datetime(2026, 5, 1, tzinfo=UTC),
        period_end=datetime(2026, 5, 2, tzinfo=UTC),
        tz=ZoneInfo("Europe/Moscow"),
    )
    elapsed = time.perf_counter() - started
    print(
        f"digest of {n} matches: {elapsed * 1000:7.1f} ms (cluster + render + split), {len(chunks)} messages, "
        f"{sum(visible_length(c) for c in chunks)} visible characters, largest {max(map(visible_length, chunks))}"
    )


async def send_benchmark(messages: int) -> None:
    token = "1:bench"
    with BotApiEmulator(token) as emu:
        chats = list(range(1000, 1000 + 100))
        for chat in chats:
            emu.add_chat(chat, "private")
        app = ApplicationBuilder().token(token).base_url(emu.base_url).rate_limiter(AIORateLimiter()).build()
        async with app:
            sender = Sender(app.bot, ChatPacer())
            started = time.perf_counter()
            results = await asyncio.gather(
                *(sender.send(chats[i % len(chats)], [f"<b>alert</b> {i}"]) for i in range(messages))
            )
            elapsed = time.perf_counter() - started
    ok = sum(isinstance(r, Sent) for r in results)
    print(
        f"sent {ok}/{messages} messages to {len(chats)} chats in {elapsed:5.2f} s: "
        f"{ok / elapsed:5.1f} messages/s (Telegram's overall limit: 30/s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--matches", type=int, default=500)
    parser.add_argument("--messages", type=int, default=300)
    args = parser.parse_args()
    render_benchmark(args.matches)
    asyncio.run(send_benchmark(args.messages))


if __name__ == "__main__":
    main()

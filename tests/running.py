"""Running the real bot in-process against the emulator, for end-to-end chat tests."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

from telegram.ext import Application

from core.config import load_config
from service.app import build_application, post_init, post_shutdown, prepare
from service.state import BotState
from tgemu import BotApiEmulator

# Items the end-to-end runs number in their titles ("… выпуск 17"), so each alert can be counted per item.
MARK = re.compile(r"выпуск (\d+)")


def received(emu: BotApiEmulator, chat: int) -> Counter[int]:
    """How many messages the chat got for each numbered item."""
    counts: Counter[int] = Counter()
    for message in emu.sent(chat):
        found = MARK.search(message.text)
        if found:
            counts[int(found.group(1))] += 1
    return counts


def numbered_by_chat(rows: Iterable[tuple[object, str]]) -> dict[int, set[int]]:
    """``(chat_id, title)`` rows as the numbered items of each chat."""
    out: dict[int, set[int]] = {}
    for chat, title in rows:
        found = MARK.search(title)
        if found:
            out.setdefault(int(str(chat)), set()).add(int(found.group(1)))
    return out


@asynccontextmanager
async def running_bot(config: Path, token: str, now: datetime) -> AsyncIterator[BotState]:
    """The bot as ``bot.py run`` builds it, polling for updates, with the clock fixed at ``now`` and no
    scheduled jobs (tests drive cycles themselves)."""
    async with running_app(config, token, now) as (_app, state):
        yield state


@asynccontextmanager
async def running_app(config: Path, token: str, now: datetime) -> AsyncIterator[tuple[Application, BotState]]:  # type: ignore[type-arg]
    """:func:`running_bot`, also giving the Application (for ``service.app.run_poll`` and friends)."""
    state = prepare(load_config(config), now)
    assert state is not None
    state.clock = lambda: now
    state.schedule_jobs = False
    app = build_application(state, token)
    await app.initialize()
    await post_init(app)
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    try:
        yield app, state
    finally:
        await app.updater.stop()
        await app.stop()
        await post_shutdown(app)
        await app.shutdown()

"""Per-user limits: one user's flood of commands cannot stall anyone else (emulator end to end)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from telegram import Update

from chat.limits import BURST, HEAVY_COST, RATE, CommandLimits, PerUserUpdates, slow_down_text
from service.state import BotState
from tests.running import running_bot
from tgemu import BotApiEmulator

REPO = Path(__file__).resolve().parents[1]
TOKEN = "4545:LIMITS-token"
ADMIN, FLOODER, OTHER = 42, 7, 9
NOW = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
FLOOD = 200


@pytest.fixture
def emu() -> Iterator[BotApiEmulator]:
    with BotApiEmulator(TOKEN) as e:
        for user in (ADMIN, FLOODER, OTHER):
            e.add_chat(user, "private")
        yield e


@pytest.fixture
async def bot(emu: BotApiEmulator, tmp_path: Path) -> AsyncIterator[BotState]:
    config = tmp_path / "config.yaml"
    config.write_text(
        f"telegram: {{base_url: '{emu.base_url}'}}\nadmins: [{ADMIN}]\n"
        f"storage: {{path: '{tmp_path / 'bot.sqlite3'}'}}\nrules: {{files: ['{REPO / 'rules'}/*.yaml']}}\n",
        encoding="utf-8",
    )
    async with running_bot(config, TOKEN, NOW) as state:
        yield state


def flood(emu: BotApiEmulator, user: int, text: str, count: int, seconds: float) -> None:
    for _ in range(count):
        emu.user_sends(user, user, text)
        time.sleep(seconds / count)


async def settled(emu: BotApiEmulator, chat: int, quiet: float = 1.5, limit: float = 60.0) -> None:
    """Wait until nothing more has been sent to ``chat`` for ``quiet`` seconds (at most ``limit``)."""
    deadline = time.monotonic() + limit
    count = -1
    while time.monotonic() < deadline and len(emu.sent(chat)) != count:
        count = len(emu.sent(chat))
        await asyncio.sleep(quiet)


async def test_a_flood_of_trend_commands_does_not_stall_another_users_start(emu: BotApiEmulator, bot: BotState) -> None:
    flood_started = time.monotonic()
    flooding = asyncio.create_task(asyncio.to_thread(flood, emu, FLOODER, "/trend 90", FLOOD, 2.0))
    await asyncio.sleep(0.5)  # the flood is under way
    started = time.monotonic()
    emu.user_sends(OTHER, OTHER, "/start")
    replies = await asyncio.to_thread(emu.wait_for, OTHER, 1, 60)
    waited = time.monotonic() - started
    flooder_answers_then = len(emu.sent(FLOODER))
    await flooding
    await settled(emu, FLOODER)  # whatever the bot still does for the flood (charts take a while under load)
    elapsed = time.monotonic() - flood_started
    assert replies and "DPRK–Russia monitor" in replies[0].text
    allowed = math.floor((BURST + RATE * elapsed) / HEAVY_COST)
    # ordering, not wall-clock: the other user was not queued behind the flood
    assert flooder_answers_then <= allowed + 1, f"the other user waited for {flooder_answers_then} flood answers"
    assert waited < 10, f"the other user waited {waited:.1f} s"  # generous: the CPU is shared
    flooder = emu.sent(FLOODER)
    photos = [m for m in flooder if m.photo is not None]
    slow_downs = [m for m in flooder if m.photo is None and "Slow down" in m.text]
    assert 1 <= len(photos) <= allowed, "only the commands within the bucket are run"
    assert len(slow_downs) == 1, ("one answer for the whole burst, not one per message", [m.text for m in flooder])
    assert len(flooder) == len(photos) + 1, "the rest are dropped silently"


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("name", "admin", "cost", "calls", "advance", "expected"),
    [
        ("a burst within the bucket runs", False, 1.0, 3, 0.0, ["ok", "ok", "ok"]),
        ("over the bucket: one warning, then silence", False, 1.0, 5, 0.0, ["ok", "ok", "ok", "warn", "drop"]),
        ("heavy commands empty it sooner", False, 3.0, 3, 0.0, ["ok", "warn", "drop"]),
        ("admins are generous", True, 3.0, 3, 0.0, ["ok", "ok", "ok"]),
        ("it refills with time", False, 1.0, 7, 1.0, ["ok"] * 5 + ["warn", "ok"]),
        (
            "one warning per flood, not per refill",
            False,
            1.0,
            9,
            0.5,
            ["ok"] * 3 + ["warn", "ok", "drop", "drop", "drop", "ok"],
        ),
    ],
)
def test_token_bucket(name: str, admin: bool, cost: float, calls: int, advance: float, expected: list[str]) -> None:
    clock = FakeClock()
    limits = CommandLimits(rate=0.5, burst=3, admin_rate=1, admin_burst=10, clock=clock)
    verdicts = []
    for _ in range(calls):
        verdicts.append(limits.check(1, cost=cost, admin=admin)[0])
        clock.now += advance
    assert verdicts == expected, name
    assert limits.check(2, cost=cost)[0] == "ok", "another user has a bucket of their own"


def test_the_warning_says_how_long_to_wait() -> None:
    clock = FakeClock()
    limits = CommandLimits(rate=0.25, burst=1, clock=clock)
    assert limits.check(1) == ("ok", 0.0)
    verdict, wait = limits.check(1)
    assert verdict == "warn" and wait == pytest.approx(4.0)
    assert "Try again in 4 s" in slow_down_text(wait)
    clock.now = 4.0
    assert limits.check(1)[0] == "ok"


async def test_lanes_keep_each_users_order_and_run_users_in_parallel() -> None:
    processor = PerUserUpdates(workers=4, max_queued=5)
    done: list[tuple[str, int]] = []
    gate = asyncio.Event()

    async def work(user: str, n: int, wait: bool) -> None:
        if wait:
            await gate.wait()
        done.append((user, n))

    def update(user: int) -> Update:
        return Update.de_json({"update_id": 1, "message": message_json(user)}, None)

    slow = [asyncio.create_task(processor.process_update(update(1), work("slow", n, n == 0))) for n in range(3)]
    await asyncio.sleep(0)
    fast = asyncio.create_task(processor.process_update(update(2), work("fast", 0, False)))
    await asyncio.wait_for(fast, 5)
    assert done == [("fast", 0)], "user 2 did not wait for user 1's blocked lane"
    flood = [asyncio.create_task(processor.process_update(update(1), work("slow", n, False))) for n in range(3, 20)]
    gate.set()
    await asyncio.gather(*slow, *flood)
    order = [n for user, n in done if user == "slow"]
    assert order == sorted(order), "one user's updates run in the order they came"
    assert len(order) == 6, "a lane holds a bounded number of waiting updates; the rest are dropped"


def message_json(user: int) -> dict[str, object]:
    return {
        "message_id": 1,
        "date": 0,
        "chat": {"id": user, "type": "private"},
        "from": {"id": user, "is_bot": False, "first_name": "u"},
        "text": "/start",
    }


def test_idle_users_are_forgotten_so_the_buckets_stay_bounded() -> None:
    clock = FakeClock()
    limits = CommandLimits(rate=1, burst=2, admin_rate=1, admin_burst=2, clock=clock)
    for user in range(5000):
        limits.check(user)
        clock.now += 0.5  # users come and go: each one's bucket is full again two seconds later
    assert len(limits._buckets) <= 1001
    assert limits.check(4999)[0] == "ok"

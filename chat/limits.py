"""Per-user limits, so that one user cannot stall everyone: updates run per user in order, users in
parallel, and each user's commands draw on a token bucket.

Why a processor of our own and not PTB's ``concurrent_updates(True)``: PTB's ``SimpleUpdateProcessor``
runs every update at once, in no order, so a user's button press could overtake the command that made
the button, and one user's 200 commands would still be 200 tasks all competing for the loop. The
:class:`PerUserUpdates` processor keeps one lane per user (per chat for updates without a user, such as
channel posts): a lane runs its updates one after another, in the order Telegram delivered them, and
different lanes run concurrently (at most :data:`WORKERS` handlers at a time). Heavy commands
(``/trend``, ``/test URL``, the rule edits' back-tests) are therefore serialised per user for free (and
``/test URL`` keeps its own fetch quota, :class:`chat.feeds.FetchLimits`). A
lane holds at most :data:`MAX_QUEUED` waiting updates; beyond that an update is dropped unprocessed (and
logged once per burst), so a flood costs bounded memory.

Measured with ``python3 bench/flood.py`` (200 ``/trend 90`` in 2 s from one user, then ``/start`` from
another, 2,000 items stored): PTB's default sequential processing answered the other user after 8–37 s
(the issue saw 29 s) and drew all 200 charts (RSS 152 → 213 MB); with the lanes and the bucket the other
user is answered in 0.05–0.10 s, 10–11 charts are drawn and one "slow down" is sent (RSS 152 → 173 MB).

The :class:`CommandLimits` bucket (``RATE`` tokens a second up to ``BURST``; config admins get
``ADMIN_RATE``/``ADMIN_BURST``; a heavy command costs :data:`HEAVY_COST`) answers the first command over
the limit with one short "slow down, try again in N s" and drops the rest silently; commands run again
as the bucket refills, and the next warning comes only after it was full again (the user calmed down).

Shared state is safe because everything runs on one event loop: a handler's synchronous parts (a rule
edit's validate-and-swap, a store write) never interleave; only its awaits do.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from telegram import Update
from telegram.ext import BaseUpdateProcessor

from core.i18n import t

log = logging.getLogger(__name__)

WORKERS = 8  # handlers running at once, across all users
MAX_QUEUED = 50  # updates waiting in one user's lane; more are dropped unprocessed
MAX_HELD = 4096  # updates held in all lanes together (PTB's semaphore): a bound on memory, never reached
RATE, BURST = 1.0, 30.0  # a user: 30 commands at once, then one a second
ADMIN_RATE, ADMIN_BURST = 2.0, 100.0  # config admins: generous
HEAVY_COST = 3.0  # /trend, rule edits (a back-test), /feed_add, /digest_now (/test URL: see chat.feeds)
_FORGET_USERS_ABOVE = 1000  # users whose bucket is full again are forgotten once this many are remembered

Verdict = Literal["ok", "warn", "drop"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float
    warned: bool = False


class CommandLimits:
    """A token bucket per user; :meth:`check` says whether a command may run now."""

    def __init__(
        self,
        *,
        rate: float = RATE,
        burst: float = BURST,
        admin_rate: float = ADMIN_RATE,
        admin_burst: float = ADMIN_BURST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1 or admin_rate <= 0 or admin_burst < 1:
            raise ValueError("rates must be positive and bursts at least 1")
        self.rate, self.burst, self.admin_rate, self.admin_burst = rate, burst, admin_rate, admin_burst
        self.clock = clock
        self._buckets: dict[int, _Bucket] = {}

    def _limits(self, admin: bool) -> tuple[float, float]:
        return (self.admin_rate, self.admin_burst) if admin else (self.rate, self.burst)

    def check(self, user: int, *, cost: float = 1.0, admin: bool = False) -> tuple[Verdict, float]:
        """("ok", 0) and the cost taken; else ("warn", seconds until it would be allowed) for the first
        refusal since the bucket was last full, ("drop", seconds) for the ones after it: a sustained flood
        gets one warning, though commands still go through as the bucket refills."""
        rate, burst = self._limits(admin)
        cost = min(cost, burst)
        now = self.clock()
        bucket = self._buckets.get(user)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._buckets[user] = _Bucket(burst, now)
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= burst:
            bucket.warned = False  # calm again: the next burst gets its own warning
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return "ok", 0.0
        wait = (cost - bucket.tokens) / rate
        if bucket.warned:
            return "drop", wait
        bucket.warned = True
        return "warn", wait

    def _forget_idle(self, now: float) -> None:
        if len(self._buckets) < _FORGET_USERS_ABOVE:
            return
        for user, bucket in list(self._buckets.items()):
            rate, burst = self._limits(False)
            if bucket.tokens + (now - bucket.at) * min(rate, self.admin_rate) >= max(burst, self.admin_burst):
                del self._buckets[user]


def slow_down_text(seconds: float) -> str:
    return t("limits.slow_down", seconds=max(1, math.ceil(seconds)))


def lane_of(update: object) -> int | str:
    """The lane an update runs in: its user, else its chat (channel posts), else one shared lane."""
    if isinstance(update, Update):
        if update.effective_user is not None:
            return update.effective_user.id
        if update.effective_chat is not None:
            return f"chat:{update.effective_chat.id}"
    return "other"


@dataclass(slots=True)
class _Lane:
    lock: asyncio.Lock
    count: int = 0  # updates in the lane, running or waiting
    dropping: bool = False


class PerUserUpdates(BaseUpdateProcessor):
    """Updates of one user in order, users in parallel (see the module docstring)."""

    def __init__(self, workers: int = WORKERS, max_queued: int = MAX_QUEUED) -> None:
        # PTB's own semaphore only bounds the updates held in all lanes together; ``workers`` the running.
        super().__init__(max_concurrent_updates=MAX_HELD)
        self.max_queued = max_queued
        self._workers = asyncio.Semaphore(workers)
        self._lanes: dict[int | str, _Lane] = {}

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        key = lane_of(update)
        lane = self._lanes.get(key)
        if lane is None:
            lane = self._lanes[key] = _Lane(asyncio.Lock())
        if lane.count > self.max_queued:
            if not lane.dropping:
                log.warning("updates_dropped lane=%s queued=%d", key, lane.count)
                lane.dropping = True
            if inspect.iscoroutine(coroutine):
                coroutine.close()  # never started: nothing to clean up, no "never awaited" warning
            return
        lane.count += 1
        try:
            async with lane.lock, self._workers:
                await coroutine
        finally:
            lane.count -= 1
            if lane.count == 0:
                del self._lanes[key]
            elif lane.count < self.max_queued // 2:
                lane.dropping = False

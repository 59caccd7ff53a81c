"""Telegram's rate limits across several sender processes: token buckets kept in the shared store.

One process keeps Telegram's limits with python-telegram-bot's AIORateLimiter (30 requests/s overall,
20 a minute per group) and delivery/sender.py's ChatPacer (about one message a second per private chat).
Three senders on one PostgreSQL would each allow 30/s. :class:`SharedRateLimiter` first takes a token
from buckets in the store — ``token`` (30/s for the bot token) and ``chat:<id>`` (1/s for a private chat,
one every 3 s for a group or channel) — each take ONE statement (``Store.take_token``), so the limits hold
for the sum of all senders; then the request goes through AIORateLimiter as before. Only requests that
post a message count (sendMessage, editMessageText, sendPhoto, …); getUpdates and the like do not.

Why shared buckets rather than "one sender role": with one sender a dead sender stops all delivery until
it is restarted, while shared buckets let any sender take over; the cost is one small UPDATE per message
(bench/workers.py measures 3 senders against the emulator at the 30/s limit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from telegram.ext import AIORateLimiter

log = logging.getLogger(__name__)

PER_TOKEN = 30.0  # messages a second for one bot token (Telegram's broadcast limit)
TOKEN_BURST = 1.0  # tokens the token bucket may store: none saved up, so no second ever holds more than 30 (+1)
PRIVATE_CHAT = 1.0  # messages a second to one private chat
GROUP_CHAT = 1 / 3  # to a group or channel: 20 a minute
COUNTED = frozenset(
    {
        "sendMessage",
        "sendPhoto",
        "sendDocument",
        "sendMediaGroup",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageCaption",
        "editMessageReplyMarkup",
    }
)

Take = Callable[[str, float, float, float], bool]  # (bucket, rate, burst, wall time) → token taken


class SharedRateLimiter(AIORateLimiter):
    """AIORateLimiter behind the shared buckets. ``take`` is ``Store.take_token``; a failing store is
    logged and does not stop the send (the per-process limiter still holds)."""

    def __init__(self, take: Take, *, per_token: float = PER_TOKEN, max_retries: int = 0) -> None:
        super().__init__(max_retries=max_retries)
        self.take = take
        self.per_token = per_token
        self.waited = 0.0  # seconds spent waiting for a shared token (bench/workers.py reports it)

    async def _acquire(self, bucket: str, rate: float, burst: float) -> None:
        started = time.monotonic()
        while True:
            try:
                if self.take(bucket, rate, burst, time.time()):
                    break
            except Exception as exc:  # never lose a send over the shared limiter
                log.warning("rate_bucket_failed bucket=%s error=%r", bucket, exc)
                break
            await asyncio.sleep(min(1.0 / rate, 0.5) / 2)
        self.waited += time.monotonic() - started

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | dict[str, Any] | list[dict[str, Any]]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | dict[str, Any] | list[dict[str, Any]]:
        if endpoint in COUNTED:
            chat = data.get("chat_id")
            if chat is not None:
                key = str(chat)
                group = key.startswith(("-", "@"))
                await self._acquire(f"chat:{key}", GROUP_CHAT if group else PRIVATE_CHAT, 1.0)
            await self._acquire("token", self.per_token, TOKEN_BURST)
        return await super().process_request(callback, args, kwargs, endpoint, data, rate_limit_args)

"""Sending one logical message to one chat, with Telegram's failures turned into typed outcomes.

    Sent(message_ids)           delivered (all chunks)
    Retry(after, error, sent)   429 (retry_after honoured exactly), 5xx, network errors: try again later;
                                ``sent`` chunks already delivered are not resent (every outcome below
                                carries ``sent`` too: how many chunks arrived before it)
    Gone(reason)                403: the bot was kicked or blocked — pause the subscription, tell admins
    Migrated(new_chat_id)       the group became a supergroup — move the subscription
    Failed(error)               permanent 400 (e.g. chat not found) — drop the delivery, log it
    Unknown(error)              the send raised something else after the request went out (the reply could
                                not be parsed, a bug): Telegram MAY have accepted chunk number ``sent``;
                                the outbox counts it as such (at most one resend, then "uncertain")

Every outcome but Unknown also carries ``message_ids``, Telegram's ids of the ``sent`` chunks that arrived.

A 400 "can't parse entities" is retried once as plain text before it counts as Failed. Nothing here
raises (Unknown stands for any other exception), so one chat's trouble never stops deliveries to the others.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError

from delivery.render import Keyboard, strip_html

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Sent:
    message_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Retry:
    after: float  # seconds
    error: str
    sent: int = 0  # chunks already delivered
    message_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Gone:
    reason: str
    sent: int = 0
    message_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Migrated:
    new_chat_id: int
    sent: int = 0
    message_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Failed:
    error: str
    sent: int = 0
    message_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Unknown:
    error: str
    sent: int = 0  # chunks surely delivered; chunk number ``sent`` may or may not have been
    message_ids: tuple[int, ...] = ()


Failure = Retry | Gone | Migrated | Failed | Unknown
Outcome = Sent | Failure


def _seconds(value: int | float | timedelta) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


@dataclass(slots=True)
class ChatPacer:
    """About one message a second per private chat, one every 3 s per group or channel (20/min).

    Telegram's documented-by-practice limits; PTB's AIORateLimiter handles the overall 30/s and the
    per-group minute budget, but not private chats.
    """

    private_interval: float = 1.0
    group_interval: float = 3.0
    _next: dict[str, float] = field(default_factory=dict)

    async def wait(self, chat_id: int | str) -> None:
        key = str(chat_id)
        interval = self.group_interval if key.startswith(("-", "@")) else self.private_interval
        now = time.monotonic()
        at = self._next.get(key, now)
        self._next[key] = max(at, now) + interval
        if at > now:
            await asyncio.sleep(at - now)


def outcome_of(exc: TelegramError) -> Retry | Gone | Migrated | Failed:
    """What a Telegram error means for this delivery (without in-call retries)."""
    if isinstance(exc, RetryAfter):
        return Retry(_seconds(exc.retry_after), f"flood control: retry after {exc.retry_after}")
    if isinstance(exc, ChatMigrated):
        return Migrated(int(exc.new_chat_id))
    if isinstance(exc, Forbidden):
        return Gone(exc.message)
    if isinstance(exc, BadRequest):  # before NetworkError, its base class
        return Failed(exc.message)
    if isinstance(exc, NetworkError):
        return Retry(30.0, f"network: {exc.message}")
    return Failed(exc.message)


def inline_markup(keyboard: Keyboard | None) -> InlineKeyboardMarkup | None:
    """A rendered keyboard (rows of (text, callback data)) as python-telegram-bot's markup."""
    if not keyboard:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(t, callback_data=d) for t, d in row] for row in keyboard])


class Sender:
    def __init__(
        self, bot: Bot, pacer: ChatPacer | None = None, network_retries: int = 2, backoff: float = 0.5
    ) -> None:
        self.bot = bot
        self.pacer = pacer or ChatPacer()
        self.network_retries = network_retries
        self.backoff = backoff  # first in-call wait after a network error; doubles each time

    async def send(
        self,
        chat_id: int | str,
        chunks: Sequence[str],
        *,
        preview: bool = True,
        skip: int = 0,
        reply_markup: Sequence[Keyboard | None] = (),
        reply_to: int | None = None,
    ) -> Outcome:
        """Send ``chunks`` (rendered HTML, each ≤ 4096 visible characters) in order, from ``skip``;
        ``reply_markup[i]``, if given, is chunk i's inline keyboard (the 👍/👎 buttons); the first chunk
        goes as a reply to message ``reply_to`` when given (sent anyway if that message is gone)."""
        ids: list[int] = []
        options = LinkPreviewOptions(is_disabled=not preview)
        for index in range(skip, len(chunks)):
            keyboard = reply_markup[index] if index < len(reply_markup) else None
            reply = ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to and index == 0 else None
            try:
                outcome = await self._send_one(chat_id, chunks[index], options, inline_markup(keyboard), reply)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # e.g. PTB could not parse Telegram's reply: it may have been accepted
                log.error("send_outcome_unknown chat=%s error=%r", chat_id, exc, exc_info=exc)
                return Unknown(repr(exc), index, tuple(ids))
            if isinstance(outcome, int):
                ids.append(outcome)
                continue
            return replace(outcome, sent=index, message_ids=tuple(ids))
        return Sent(tuple(ids))

    async def send_photo(self, chat_id: int | str, photo: bytes, caption: str = "") -> Outcome:
        """Send one image with an HTML caption, once: no in-call retries (a chart is not worth a delay)."""
        await self.pacer.wait(chat_id)
        try:
            message = await self.bot.send_photo(chat_id, photo, caption=caption or None, parse_mode=ParseMode.HTML)
            return Sent((message.message_id,))
        except TelegramError as exc:
            return outcome_of(exc)
        except Exception as exc:  # a reply PTB cannot parse: the photo may have arrived
            return Unknown(repr(exc))

    async def edit(
        self,
        chat_id: int | str,
        message_id: int,
        text: str,
        *,
        preview: bool = True,
        reply_markup: Keyboard | None = None,
    ) -> Outcome:
        """Replace the text of a message the bot sent, once (no in-call retries). "Message is not
        modified" counts as done (a repeated edit after a crash). ``reply_markup``: the message's buttons,
        which Telegram removes from an edited message unless the edit sends them again."""
        await self.pacer.wait(chat_id)
        try:
            await self.bot.edit_message_text(
                text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=not preview),
                reply_markup=inline_markup(reply_markup),
            )
            return Sent((message_id,))
        except BadRequest as exc:
            if "not modified" in exc.message.lower():
                return Sent((message_id,))
            return outcome_of(exc)
        except TelegramError as exc:
            return outcome_of(exc)
        except Exception as exc:  # a reply PTB cannot parse: the edit may have happened; an edit is idempotent
            log.warning("edit_outcome_unknown chat=%s message=%s error=%r", chat_id, message_id, exc)
            return Retry(30.0, f"unreadable reply: {exc!r}")

    async def _send_one(
        self,
        chat_id: int | str,
        text: str,
        options: LinkPreviewOptions,
        markup: InlineKeyboardMarkup | None = None,
        reply: ReplyParameters | None = None,
    ) -> int | Retry | Gone | Migrated | Failed:
        plain = False
        attempt = 0
        while True:
            await self.pacer.wait(chat_id)
            try:
                message = await self.bot.send_message(
                    chat_id,
                    strip_html(text) if plain else text,
                    parse_mode=None if plain else ParseMode.HTML,
                    link_preview_options=options,
                    reply_markup=markup,
                    reply_parameters=reply,
                )
                return message.message_id
            except BadRequest as exc:
                if "parse entities" in exc.message.lower() and not plain:
                    log.warning("send_entities_refused chat=%s error=%r; resending as plain text", chat_id, exc.message)
                    plain = True
                    continue
                return outcome_of(exc)
            except NetworkError as exc:  # includes TimedOut and 5xx answers
                attempt += 1
                if attempt > self.network_retries:
                    return Retry(min(30.0 * attempt, 300.0), f"network: {exc.message}")
                await asyncio.sleep(min(self.backoff * 2 ** (attempt - 1), 5.0))
            except TelegramError as exc:  # RetryAfter, ChatMigrated, Forbidden, …
                return outcome_of(exc)

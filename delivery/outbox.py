"""Draining the outbox: instant alerts now, digests when due; the store decides what is pending.

A delivery is marked sent only after Telegram accepted it, so a crash between the two repeats that one
message and loses nothing. A chat that fails never holds up the others: its entries are retried later
(Retry), moved (Migrated), paused with the admins told (Gone), or dropped with a log line (Failed).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from core.config import DigestDefaults, parse_clock
from delivery import stories
from delivery.cluster import Entry
from delivery.digest import build_digest_parts, digest_due
from delivery.render import render_alert
from delivery.sender import Failed, Gone, Migrated, Outcome, Retry, Sent
from store import OutboxEntry, Store, Subscription

log = logging.getLogger(__name__)

Notify = Callable[[str], Awaitable[None]]


class MessageSender(Protocol):
    async def send(
        self, chat_id: int | str, chunks: Sequence[str], *, preview: bool = True, skip: int = 0
    ) -> Outcome: ...

    async def send_photo(self, chat_id: int | str, photo: bytes, caption: str = "") -> Outcome: ...


@dataclass(slots=True)
class DeliveryReport:
    sent: int = 0
    retried: int = 0
    dropped: int = 0
    paused_chats: list[str] = field(default_factory=list)
    migrated_chats: list[tuple[str, int]] = field(default_factory=list)
    digests: int = 0
    edited: int = 0  # story alerts edited (or replied to) with new sources


def telegram_chat_id(chat_id: str) -> int | str:
    """Store keys are text; Telegram wants numbers for numeric ids and '@name' for channels."""
    return chat_id if chat_id.startswith("@") else int(chat_id)


async def _handle_failure(
    store: Store,
    chat_id: str,
    outcome: Outcome,
    ids: Sequence[int],
    now: datetime,
    report: DeliveryReport,
    notify: Notify | None,
) -> None:
    if isinstance(outcome, Retry):
        for outbox_id in ids:
            store.mark_retry(outbox_id, now, now + timedelta(seconds=max(outcome.after, 1.0)), outcome.error)
        report.retried += len(ids)
    elif isinstance(outcome, Gone):
        store.set_paused(chat_id, True, outcome.reason, now)
        report.paused_chats.append(chat_id)
        log.warning("subscription_paused chat=%s reason=%r", chat_id, outcome.reason)
        if notify:
            await notify(f"⏸ Subscription for chat {chat_id} paused: {outcome.reason}")
    elif isinstance(outcome, Migrated):
        store.migrate_chat(chat_id, outcome.new_chat_id, now)
        report.migrated_chats.append((chat_id, outcome.new_chat_id))
        log.info("subscription_migrated chat=%s new_chat=%s", chat_id, outcome.new_chat_id)
    elif isinstance(outcome, Failed):
        for outbox_id in ids:
            store.mark_dropped(outbox_id, outcome.error)
        report.dropped += len(ids)
        log.error("delivery_dropped chat=%s error=%r", chat_id, outcome.error)


async def deliver_instant(
    store: Store,
    sender: MessageSender,
    now: Callable[[], datetime],
    *,
    notify: Notify | None = None,
    limit: int = 200,
    parallel_chats: int = 8,
) -> DeliveryReport:
    """Send every pending instant alert that is due, in order per chat; up to ``parallel_chats`` chats at
    once (each chat is paced on its own, the rate limiter caps the total); one chat's failure (its later
    alerts wait with it, keeping their order) never stops the others."""
    report = DeliveryReport()
    by_chat: dict[str, list[OutboxEntry]] = {}
    for entry in store.pending_instant(now(), limit):
        by_chat.setdefault(entry.chat_id, []).append(entry)

    async def one_chat(chat_id: str, entries: list[OutboxEntry]) -> None:
        for index, entry in enumerate(entries):
            if stories.absorb(store, entry, now()):  # a later report of a story already alerted: edit, not send
                report.sent += 1
                continue
            text = render_alert(entry.item, entry.matches)
            outcome = await sender.send(telegram_chat_id(chat_id), [text])
            if isinstance(outcome, Sent):
                stories.record(store, entry, outcome, text, now())  # marks it sent, keeps its message id
                report.sent += 1
                continue
            if isinstance(outcome, Failed):  # this message can never go; the chat's next ones can
                await _handle_failure(store, chat_id, outcome, [entry.id], now(), report, notify)
                continue
            ids = [e.id for e in entries[index:]]
            await _handle_failure(store, chat_id, outcome, ids, now(), report, notify)
            return

    await per_chat([(c, functools.partial(one_chat, c, entries)) for c, entries in by_chat.items()], parallel_chats)
    if isinstance(sender, stories.StorySender):
        report.edited = await stories.flush(store, sender, now, telegram_chat_id)
    return report


@dataclass(frozen=True, slots=True)
class DigestPlan:
    subscription: Subscription
    scheduled: datetime
    tz: ZoneInfo


def due_digests(store: Store, defaults: DigestDefaults, now: datetime) -> list[DigestPlan]:
    plans = []
    for sub in store.subscriptions():
        if sub.paused or sub.mode == "instant":
            continue
        tz = ZoneInfo(sub.timezone or defaults.timezone)
        at: time = (parse_clock(sub.digest_time) if sub.digest_time else None) or defaults.time
        scheduled = digest_due(now, at, tz, sub.last_digest_at, sub.created_at)
        if scheduled is not None:
            plans.append(DigestPlan(sub, scheduled, tz))
    return plans


def render_digest_parts(
    store: Store, plan: DigestPlan, defaults: DigestDefaults, now: datetime, rule_titles: dict[str, str] | None = None
) -> tuple[list[tuple[str, list[int]]], list[int]]:
    """The digest's messages, each with the outbox ids it shows, and all the ids it covers."""
    entries = store.digest_entries(plan.subscription.id, now)
    parts = build_digest_parts(
        [Entry(e.item, e.matches, story=e.story_id) for e in entries],  # stories were decided when stored
        period_start=plan.subscription.last_digest_at,
        period_end=now,
        tz=plan.tz,
        rule_titles=rule_titles,
        send_empty=defaults.send_empty,
    )
    return [(text, [entries[i].id for i in shown]) for text, shown in parts], [e.id for e in entries]


async def send_digest(
    store: Store,
    sender: MessageSender,
    plan: DigestPlan,
    defaults: DigestDefaults,
    now: Callable[[], datetime],
    report: DeliveryReport,
    *,
    notify: Notify | None = None,
    rule_titles: dict[str, str] | None = None,
) -> None:
    """Send one subscription's digest now (or record an empty period) and complete it on success.

    When Telegram fails part-way (a 429 on the third message), the items of the messages that arrived
    are marked sent; the digest stays due and its next attempt carries only the rest (a paused or moved
    chat gets only the rest when it is back; a permanent failure drops only the rest)."""
    sub = plan.subscription
    parts, ids = render_digest_parts(store, plan, defaults, now(), rule_titles)
    if not parts:
        store.complete_digest(sub.id, ids, now())
        return
    outcome = await sender.send(telegram_chat_id(sub.chat_id), [text for text, _ in parts], preview=False)
    if not isinstance(outcome, Sent) and outcome.sent:
        delivered = [i for _, shown in parts[: outcome.sent] for i in shown]
        store.mark_sent(delivered, now())
        report.sent += len(delivered)
        ids = [i for i in ids if i not in set(delivered)]
    if isinstance(outcome, Sent):
        store.complete_digest(sub.id, ids, now())
        report.digests += 1
        report.sent += len(ids)
        if defaults.trend and ids:
            await send_trend(store, sender, plan, now(), list(rule_titles) if rule_titles else None)
    else:
        await _handle_failure(  # a Retry marks the rest with its time, which deliver_digests waits for
            store, sub.chat_id, outcome, ids if isinstance(outcome, Failed | Retry) else [], now(), report, notify
        )


TREND_DAYS = 14
TREND_CAPTION = "Matches per day, last 14 days"


async def send_trend(
    store: Store, sender: MessageSender, plan: DigestPlan, now: datetime, rule_names: Sequence[str] | None
) -> bool:
    """After a digest: its chart of matches per day for the rules the subscription follows. The digest is
    already complete, so a failure here is logged and never raised, retried or repeated."""
    from delivery.trend import day_window, period_title, render_trend  # matplotlib loads only when used

    sub = plan.subscription
    try:
        since, days = day_window(now, plan.tz, TREND_DAYS)
        series = store.daily_match_counts(since, now, plan.tz, "rule", list(sub.rules) or rule_names)
        title = f"Matches per day, {period_title(days)} ({plan.tz.key})"
        png = await asyncio.to_thread(render_trend, series, days, title)
        outcome = await sender.send_photo(telegram_chat_id(sub.chat_id), png, TREND_CAPTION)
    except Exception as exc:  # a chart must never break digests
        log.error("digest_trend_failed chat=%s error=%r", sub.chat_id, exc, exc_info=exc)
        return False
    if not isinstance(outcome, Sent):
        log.warning("digest_trend_not_sent chat=%s outcome=%r", sub.chat_id, outcome)
        return False
    return True


async def deliver_digests(
    store: Store,
    sender: MessageSender,
    defaults: DigestDefaults,
    now: Callable[[], datetime],
    *,
    notify: Notify | None = None,
    rule_titles: dict[str, str] | None = None,
    parallel_chats: int = 8,
) -> DeliveryReport:
    """Send every digest that is due at its subscription's local time, up to ``parallel_chats`` at once."""
    report = DeliveryReport()
    jobs = []
    for plan in due_digests(store, defaults, now()):
        retry_at = store.digest_retry_at(plan.subscription.id)
        if retry_at is not None and retry_at > now():  # Telegram asked us to wait (429) or could not be reached
            continue
        send = functools.partial(
            send_digest, store, sender, plan, defaults, now, report, notify=notify, rule_titles=rule_titles
        )
        jobs.append((plan.subscription.chat_id, send))
    await per_chat(jobs, parallel_chats)
    return report


async def per_chat(jobs: Sequence[tuple[str, Callable[[], Awaitable[None]]]], parallel: int) -> None:
    """Run one delivery job per chat, at most ``parallel`` at once (each chat is paced on its own and the
    rate limiter caps the total). A job that raises (a bug) is logged; its entries stay pending and the
    other chats' jobs go on."""
    slots = asyncio.Semaphore(max(parallel, 1))

    async def bounded(job: Callable[[], Awaitable[None]]) -> None:
        async with slots:
            await job()

    results = await asyncio.gather(*(bounded(job) for _, job in jobs), return_exceptions=True)
    for (chat_id, _), result in zip(jobs, results, strict=True):
        if isinstance(result, Exception):
            log.error("delivery_crashed chat=%s error=%r", chat_id, result, exc_info=result)
        elif isinstance(result, BaseException):  # cancelled (shutdown): do not swallow it
            raise result

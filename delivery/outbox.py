"""Draining the outbox: instant alerts now, digests when due; the store decides what is pending.

Every entry goes through one state machine with a hard bound on copies:

    pending ──begin_send──► in_flight ──Sent──► sent (message_id, chat_id recorded)
       ▲                        │ Retry / Gone / Migrated: back to pending (Telegram refused: nothing sent)
       │                        │ Failed: dropped (logged)
       └── once ◄───────────────┤ Unknown (PTB could not read the reply), the record after the send failed,
                                │ or the process died: Telegram MAY have accepted it; counted as an
                                ▼ unconfirmed send; the second one makes it "uncertain" (never sent again)
                            uncertain (logged, counted in metrics, the admins told once per incident)

"In flight" is recorded in its own transaction BEFORE the call to Telegram; when that write fails nothing
is sent (the pass stops and reports ``store_error``: a message that cannot be recorded is never sent).
So a message Telegram may have accepted goes out at most twice, whatever fails after the send. Entries
left in flight (crash, failed record) are resolved by the same rule at the start of the next pass.

A chat that fails never holds up the others: its entries are retried later (Retry), moved (Migrated),
paused with the admins told (Gone), or dropped with a log line (Failed).

Instant alerts that are too old when they finally go out (``stale_after``: the bot or Telegram was down;
see ``_is_stale``)
are folded into one "while the bot was offline" message a chat, and a pass that would send a chat more
than ``max_per_chat`` alerts sends the first ones and one summary for the rest. The digest still carries
every item; an instant-only chat gets the folded items' titles and links in the fold message itself.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from core import i18n
from core.config import DigestDefaults, parse_clock
from delivery import stories
from delivery.cluster import Entry
from delivery.digest import build_digest_messages, digest_due
from delivery.render import Keyboard, VoteData, digest_vote_keyboard, render_alert, render_fold, vote_keyboard
from delivery.sender import Failed, Gone, Migrated, Outcome, Retry, Sent, Unknown
from store import DB_ERRORS, OutboxEntry, Store, Subscription
from store.claims import Worker

log = logging.getLogger(__name__)

# A notice to the admins: a text, or the text in a language (each admin reads it in their chat's language)
Notice = str | Callable[[str], str]
Notify = Callable[[Notice], Awaitable[None]]


class MessageSender(Protocol):
    async def send(
        self,
        chat_id: int | str,
        chunks: Sequence[str],
        *,
        preview: bool = True,
        skip: int = 0,
        reply_markup: Sequence[Keyboard | None] = (),
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
    uncertain: list[int] = field(default_factory=list)  # outbox ids that became 'uncertain' in this pass
    unconfirmed: int = 0  # sends Telegram may have accepted without our record (each resent at most once)
    folded: int = 0  # alerts that went out inside a "while offline" or summary message
    store_error: str | None = None  # a store write failed: the pass stopped, nothing unrecorded was sent
    edited: int = 0  # story alerts edited (or replied to) with new sources

    def store_failed(self, what: str, exc: Exception) -> None:
        if self.store_error is None:
            self.store_error = f"{what}: {exc}"
        log.error("delivery_store_write_failed what=%s error=%r", what, exc)


class StoreUnwritable(Exception):
    """A store write the delivery needs failed; the pass stops (nothing is sent that cannot be recorded)."""


class Taken(Exception):
    """Another worker moved an entry of this message to in flight first: this worker sends nothing of it."""


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
            reason = outcome.reason
            await notify(lambda lang: i18n.t("admin.chat_paused", lang, chat=chat_id, reason=reason))
    elif isinstance(outcome, Migrated):
        store.migrate_chat(chat_id, outcome.new_chat_id, now)
        report.migrated_chats.append((chat_id, outcome.new_chat_id))
        log.info("subscription_migrated chat=%s new_chat=%s", chat_id, outcome.new_chat_id)
    elif isinstance(outcome, Failed):
        for outbox_id in ids:
            store.mark_dropped(outbox_id, outcome.error)
        report.dropped += len(ids)
        log.error("delivery_dropped chat=%s error=%r", chat_id, outcome.error)


async def send_tracked(
    store: Store,
    sender: MessageSender,
    chat_id: str,
    ids: Sequence[int],
    chunks: Sequence[str],
    now: Callable[[], datetime],
    report: DeliveryReport,
    *,
    preview: bool = True,
    reply_markup: Sequence[Keyboard | None] = (),
    record: Callable[[Sent, datetime], None] | None = None,
    worker: Worker | None = None,
) -> Outcome:
    """One message (``chunks``) covering outbox ``ids``, through the state machine. Sent: recorded with its
    message id; Unknown: counted as an unconfirmed send (uncertain at the second); a refusal: the ids are
    back to pending for the caller to handle. Raises StoreUnwritable when "in flight" cannot be recorded
    (nothing was sent) or when the record after the send fails (the ids stay in flight: maybe sent).
    Raises Taken when another worker began sending one of ``ids`` first (this one sends nothing)."""
    _begin(store, ids, now(), report, worker)
    outcome = await sender.send(telegram_chat_id(chat_id), chunks, preview=preview, reply_markup=reply_markup)
    try:
        if isinstance(outcome, Sent) and record is not None:
            record(outcome, now())  # marks it sent, with what else must be kept in the same transaction
        elif isinstance(outcome, Sent):
            store.mark_sent(
                ids, now(), chat_id=chat_id, message_id=outcome.message_ids[0] if outcome.message_ids else None
            )
        elif isinstance(outcome, Unknown):
            _unconfirmed(store, chat_id, ids, outcome.error, report)
        else:
            store.release(ids)
    except DB_ERRORS as exc:
        report.store_failed("record_send", exc)
        raise StoreUnwritable(str(exc)) from exc
    return outcome


def _begin(store: Store, ids: Sequence[int], at: datetime, report: DeliveryReport, worker: Worker | None) -> None:
    """``ids`` pending → in flight for ``worker``; StoreUnwritable when that cannot be recorded, Taken
    (the ones this call moved put back) when another worker holds one of them."""
    try:
        moved = store.begin_send(ids, at, worker=worker.id if worker else None, lease=worker.lease if worker else 0)
        if len(moved) != len(ids):
            store.release(moved)
    except DB_ERRORS as exc:
        report.store_failed("begin_send", exc)
        raise StoreUnwritable(str(exc)) from exc
    if len(moved) != len(ids):
        log.info("delivery_taken outbox_ids=%s: another worker is sending them", sorted(set(ids) - set(moved)))
        raise Taken(str(sorted(set(ids) - set(moved))))


def _unconfirmed(store: Store, chat_id: str, ids: Sequence[int], error: str, report: DeliveryReport) -> None:
    uncertain = store.mark_unconfirmed(ids, error)
    report.unconfirmed += len(ids)
    report.uncertain.extend(uncertain)
    if uncertain:
        log.error("delivery_uncertain chat=%s outbox_ids=%s error=%r", chat_id, uncertain, error)
    else:
        log.warning("delivery_unconfirmed chat=%s outbox_ids=%s error=%r; sent again once", chat_id, list(ids), error)


def resolve_interrupted(
    store: Store, report: DeliveryReport, worker: Worker | None = None, now: datetime | None = None
) -> bool:
    """Entries left in flight by an earlier pass (its record failed, or the process died): maybe sent, so
    each is resent once at most. False when the store cannot be written (the pass must not send). With
    ``worker`` on a shared store: only expired, own and previous-life entries (store/claims.py)."""
    try:
        if worker is None or now is None:
            resent, uncertain = store.resolve_in_flight()
        else:
            resent, uncertain = store.resolve_in_flight(worker.id, now)
    except DB_ERRORS as exc:
        report.store_failed("resolve_in_flight", exc)
        return False
    if resent or uncertain:
        log.warning("delivery_interrupted resent_once=%s uncertain=%s", resent, uncertain)
    report.unconfirmed += len(resent) + len(uncertain)
    report.uncertain.extend(uncertain)
    return True


FOLD_HEADERS = ("fold.offline", "fold.bulk")  # catalogue keys: alerts from while offline, beyond the per-pass cap


def chat_language(store: Store, chat_id: str, default: str) -> str:
    """The interface language of a chat's alerts and digests: the one stored for it (chosen with
    /language, or the private user's app language at /subscribe), else ``default`` (config
    ``interface.language``); a store that cannot say (locked, disk error) is no reason to hold a message."""
    try:
        stored = store.chat_language(chat_id)
    except DB_ERRORS:
        stored = None
    return i18n.chat_language(stored, None, None, default)


def _is_stale(entry: OutboxEntry, now: datetime, stale_after: timedelta | None, offline_since: datetime | None) -> bool:
    """Queued longer ago than ``stale_after`` (Telegram or the bot was down), or published while the bot was
    offline (after ``offline_since``, its last heartbeat before this start) and older than ``stale_after``.
    An item with an old date that was published while the bot was running is not late: it is news to us."""
    if stale_after is None:
        return False
    if now - entry.created_at > stale_after:
        return True
    published = entry.item.published
    return offline_since is not None and published is not None and offline_since <= published < now - stale_after


async def deliver_instant(
    store: Store,
    sender: MessageSender,
    now: Callable[[], datetime],
    *,
    notify: Notify | None = None,
    limit: int = 5000,
    parallel_chats: int = 8,
    stale_after: timedelta | None = None,
    offline_since: datetime | None = None,
    max_per_chat: int | None = None,
    votes: VoteData | None = None,
    language: str = i18n.DEFAULT,
    worker: Worker | None = None,
) -> DeliveryReport:
    """Send every pending instant alert that is due, in order per chat; up to ``parallel_chats`` chats at
    once (each chat is paced on its own, the rate limiter caps the total); one chat's failure (its later
    alerts wait with it, keeping their order) never stops the others. Alerts older than ``stale_after``
    are folded into one message a chat, and beyond ``max_per_chat`` fresh ones the rest go in one summary.
    With ``votes`` (the callback data signer) each alert carries 👍/👎 buttons. With ``worker`` (several
    workers on one store) only the chats this worker claimed are sent (store/claims.py), released after."""
    report = DeliveryReport()
    if not resolve_interrupted(store, report, worker, now()):  # once, before any send of this pass is in flight
        return report
    options = (notify, parallel_chats, stale_after, offline_since, max_per_chat, votes, language, worker)
    if worker is None:
        try:
            pending = store.pending_instant(now(), limit)
        except DB_ERRORS as exc:
            report.store_failed("pending_instant", exc)
            return report
        await _deliver_chats(store, sender, pending, now, report, *options)
        return report
    # Several senders share the chats: this one claims a few at a time (as many as it sends at once, twice),
    # sends them, releases them and claims again, so idle senders take the rest meanwhile.
    handled: set[int] = set()
    while report.store_error is None:
        try:
            chats = store.claim_chats(worker.id, now(), worker.lease, 2 * max(parallel_chats, 1), exclude=handled)
            pending = store.pending_instant(now(), limit, subscriptions=chats) if chats else []
        except DB_ERRORS as exc:
            report.store_failed("claim_chats", exc)
            break
        if not chats:
            break
        handled.update(chats)
        try:
            await _deliver_chats(store, sender, pending, now, report, *options)
        finally:
            try:
                store.release_chats(worker.id)
            except DB_ERRORS as exc:  # they expire after the lease
                report.store_failed("release_chats", exc)
    return report


async def _deliver_chats(
    store: Store,
    sender: MessageSender,
    pending: Sequence[OutboxEntry],
    now: Callable[[], datetime],
    report: DeliveryReport,
    notify: Notify | None,
    parallel_chats: int,
    stale_after: timedelta | None,
    offline_since: datetime | None,
    max_per_chat: int | None,
    votes: VoteData | None,
    language: str,
    worker: Worker | None,
) -> None:
    by_chat: dict[str, list[OutboxEntry]] = {}
    for entry in pending:
        by_chat.setdefault(entry.chat_id, []).append(entry)

    async def one_chat(chat_id: str, entries: list[OutboxEntry]) -> None:
        at = now()
        try:  # a later report of a story this chat was already alerted to joins that alert (edited, not sent)
            absorbed = {e.id for e in entries if stories.absorb(store, e, at)}
        except DB_ERRORS as exc:
            report.store_failed("absorb", exc)
            return
        report.sent += len(absorbed)
        entries = [e for e in entries if e.id not in absorbed]
        stale = [e for e in entries if _is_stale(e, at, stale_after, offline_since)]
        fresh = [e for e in entries if not _is_stale(e, at, stale_after, offline_since)]
        overflow = fresh[max_per_chat:] if max_per_chat is not None else []
        fresh = fresh[: len(fresh) - len(overflow)]
        lang = chat_language(store, chat_id, language)
        messages: list[tuple[list[OutboxEntry], list[str], bool]] = [
            ([e], [render_alert(e.item, e.matches, lang)], True) for e in fresh
        ]
        sub = store.subscription(chat_id) if stale or overflow else None
        in_digest = sub is not None and sub.mode in ("digest", "both")
        for header, group in zip(FOLD_HEADERS, (stale, overflow), strict=True):
            if not group:
                continue
            title = i18n.t(header, lang, n=len(group))
            byid = {e.id: e for e in group}
            folded = render_fold(title, [(e.id, e.item) for e in group], in_digest=in_digest, lang=lang)
            for text, shown in folded:
                messages.append(([byid[i] for i in shown], [text], False))
        for index, (covered, chunks, preview) in enumerate(messages):
            ids = [e.id for e in covered]
            single = covered[0] if preview and len(covered) == 1 else None
            try:
                if single is not None and index and stories.absorb(store, single, now()):
                    report.sent += 1  # the same story as an alert sent earlier in this pass
                    continue
                buttons = [vote_keyboard(covered[0].item_id, votes)] if votes and preview else []
                record = _story_recorder(store, single, chunks[0]) if single else None
                outcome = await send_tracked(
                    store,
                    sender,
                    chat_id,
                    ids,
                    chunks,
                    now,
                    report,
                    preview=preview,
                    reply_markup=buttons,
                    record=record,
                    worker=worker,
                )
            except DB_ERRORS as exc:
                report.store_failed("absorb", exc)
                return
            except StoreUnwritable:
                return
            except Taken:
                continue  # another worker sends it
            if isinstance(outcome, Sent):
                report.sent += len(ids)
                report.folded += 0 if preview else len(ids)
                continue
            if isinstance(outcome, Unknown):
                continue  # counted; resent at most once, by a later pass
            if isinstance(outcome, Failed):  # this message can never go; the chat's next ones can
                await _handle_failure(store, chat_id, outcome, ids, now(), report, notify)
                continue
            rest = [e.id for covered_later, _, _ in messages[index:] for e in covered_later]
            await _handle_failure(store, chat_id, outcome, rest, now(), report, notify)
            return

    await per_chat([(c, functools.partial(one_chat, c, entries)) for c, entries in by_chat.items()], parallel_chats)
    if isinstance(sender, stories.StorySender) and report.store_error is None:
        try:
            with store.advisory_lock("story_edits") as mine:  # one worker edits story alerts at a time
                if mine:
                    report.edited = await stories.flush(
                        store,
                        sender,
                        now,
                        telegram_chat_id,
                        language_of=lambda chat: chat_language(store, chat, language),
                        keyboard_of=(lambda item_id: vote_keyboard(item_id, votes)) if votes else lambda item_id: None,
                    )
        except DB_ERRORS as exc:
            report.store_failed("story_edit", exc)


def _story_recorder(store: Store, entry: OutboxEntry, text: str) -> Callable[[Sent, datetime], None]:
    """What a sent alert records: sent, its message id, and (for a story's first alert) the story alert
    that later reports edit — one transaction (:func:`delivery.stories.record`)."""

    def record(sent: Sent, at: datetime) -> None:
        stories.record(store, entry, sent, text, at)

    return record


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
    parts, ids = render_digest_messages(store, plan, defaults, now, rule_titles)
    return [(text, shown) for text, shown, _ in parts], ids


def render_digest_messages(
    store: Store,
    plan: DigestPlan,
    defaults: DigestDefaults,
    now: datetime,
    rule_titles: dict[str, str] | None = None,
    votes: VoteData | None = None,
    lang: str = i18n.DEFAULT,
) -> tuple[list[tuple[str, list[int], Keyboard | None]], list[int]]:
    """:func:`render_digest_parts`, each message with its keyboard: with ``votes``, the entries are
    numbered and each message carries a 👍/👎 pair per entry it shows (voting on a story's lead item)."""
    entries = store.digest_entries(plan.subscription.id, now)
    messages = build_digest_messages(
        [Entry(e.item, e.matches, story=e.story_id) for e in entries],  # stories were decided when stored
        period_start=plan.subscription.last_digest_at,
        period_end=now,
        tz=plan.tz,
        rule_titles=rule_titles,
        send_empty=defaults.send_empty,
        numbered=votes is not None,
        lang=lang,
    )
    parts = [
        (
            m.text,
            [entries[i].id for i in m.shown],
            digest_vote_keyboard([(n, entries[i].item_id) for n, i in m.stories], votes) if votes else None,
        )
        for m in messages
    ]
    return parts, [e.id for e in entries]


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
    votes: VoteData | None = None,
    language: str = i18n.DEFAULT,
    worker: Worker | None = None,
) -> bool:
    """Send one subscription's digest now (or record an empty period) and complete it on success (True).

    When Telegram fails part-way (a 429 on the third message), the items of the messages that arrived
    are marked sent; the digest stays due and its next attempt carries only the rest (a paused or moved
    chat gets only the rest when it is back; a permanent failure drops only the rest)."""
    sub = plan.subscription
    lang = chat_language(store, sub.chat_id, language)
    parts, ids = render_digest_messages(store, plan, defaults, now(), rule_titles, votes, lang)
    try:
        if not parts:
            store.complete_digest(sub.id, ids, now())
            return True
    except DB_ERRORS as exc:
        report.store_failed("complete_digest", exc)
        return False
    try:
        _begin(store, ids, now(), report, worker)
    except (StoreUnwritable, Taken):
        return False
    outcome = await sender.send(
        telegram_chat_id(sub.chat_id),
        [text for text, _, _ in parts],
        preview=False,
        reply_markup=[keyboard for _, _, keyboard in parts],
    )
    arrived = len(parts) if isinstance(outcome, Sent) else outcome.sent
    try:
        delivered: set[int] = set()
        for (_, shown, _), message_id in zip(parts[:arrived], outcome.message_ids, strict=False):
            store.mark_sent(shown, now(), chat_id=sub.chat_id, message_id=message_id)
            delivered.update(shown)
        rest = [i for i in ids if i not in delivered]
        if isinstance(outcome, Sent):
            store.complete_digest(sub.id, rest, now())
            report.digests += 1
            report.sent += len(ids)
        elif isinstance(outcome, Unknown):
            maybe = parts[arrived][1] if arrived < len(parts) else []
            _unconfirmed(store, sub.chat_id, maybe, outcome.error, report)
            store.release([i for i in rest if i not in set(maybe)])
            report.sent += len(delivered)
        else:
            report.sent += len(delivered)
            store.release(rest)
    except DB_ERRORS as exc:
        report.store_failed("record_digest", exc)
        return False
    if isinstance(outcome, Sent):
        if defaults.trend and ids:
            await send_trend(store, sender, plan, now(), list(rule_titles) if rule_titles else None, lang)
        return True
    if not isinstance(outcome, Unknown):
        await _handle_failure(  # a Retry marks the rest with its time, which deliver_digests waits for
            store, sub.chat_id, outcome, rest if isinstance(outcome, Failed | Retry) else [], now(), report, notify
        )
    return False


TREND_DAYS = 14
TREND_CAPTION = i18n.t("trend.digest_caption", i18n.DEFAULT, n=TREND_DAYS)  # English; a chat gets its own


async def send_trend(
    store: Store,
    sender: MessageSender,
    plan: DigestPlan,
    now: datetime,
    rule_names: Sequence[str] | None,
    lang: str = i18n.DEFAULT,
) -> bool:
    """After a digest: its chart of matches per day for the rules the subscription follows. The digest is
    already complete, so a failure here is logged and never raised, retried or repeated."""
    from delivery.trend import day_window, period_title, render_trend  # matplotlib loads only when used

    sub = plan.subscription
    try:
        since, days = day_window(now, plan.tz, TREND_DAYS)
        series = store.daily_match_counts(since, now, plan.tz, "rule", list(sub.rules) or rule_names)
        subject = i18n.t("trend.per_rule", lang)
        title = i18n.t("trend.title", lang, subject=subject, period=period_title(days), zone=plan.tz.key)
        png = await asyncio.to_thread(render_trend, series, days, title)
        outcome = await sender.send_photo(
            telegram_chat_id(sub.chat_id), png, i18n.t("trend.digest_caption", lang, n=TREND_DAYS)
        )
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
    votes: VoteData | None = None,
    language: str = i18n.DEFAULT,
    worker: Worker | None = None,
) -> DeliveryReport:
    """Send every digest that is due at its subscription's local time, up to ``parallel_chats`` at once.
    With ``worker``, each digest is claimed first (once per subscription per local day, store/claims.py):
    a digest another worker claimed is skipped."""
    report = DeliveryReport()
    if not resolve_interrupted(store, report, worker, now()):  # once, before any send of this pass is in flight
        return report
    jobs = []
    for plan in due_digests(store, defaults, now()):
        retry_at = store.digest_retry_at(plan.subscription.id)
        if retry_at is not None and retry_at > now():  # Telegram asked us to wait (429) or could not be reached
            continue
        day = plan.scheduled.astimezone(plan.tz).date().isoformat()
        if worker is not None:
            try:
                if not store.claim_digest(plan.subscription.id, day, worker.id, now(), worker.lease):
                    continue
            except DB_ERRORS as exc:
                report.store_failed("claim_digest", exc)
                return report
        send = functools.partial(
            _claimed_digest,
            day,
            store,
            sender,
            plan,
            defaults,
            now,
            report,
            notify=notify,
            rule_titles=rule_titles,
            votes=votes,
            language=language,
            worker=worker,
        )
        jobs.append((plan.subscription.chat_id, send))
    await per_chat(jobs, parallel_chats)
    return report


async def _claimed_digest(
    day: str,
    store: Store,
    sender: MessageSender,
    plan: DigestPlan,
    defaults: DigestDefaults,
    now: Callable[[], datetime],
    report: DeliveryReport,
    *,
    worker: Worker | None,
    **options: Any,
) -> None:
    """:func:`send_digest`, then the digest's claim is done (never sent again) or released (tried again)."""
    done = await send_digest(store, sender, plan, defaults, now, report, worker=worker, **options)
    if worker is not None:
        try:
            store.finish_digest(plan.subscription.id, day, worker.id, done=done, now=now())
        except DB_ERRORS as exc:  # a done digest is not due any more (last_digest_at); a claim expires
            report.store_failed("finish_digest", exc)


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

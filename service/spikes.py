"""The ``spikes`` job: find spikes (delivery/spikes.py decides), record each once per window (the
cooldown is the spike's row in the store, so a restart does not alert again), and send the alerts.

Why the send is here and not in the outbox pass: a spike is not an item. Its copies go through the same
Sender and the same bounded states as outbox rows (store/spikes.py): "in flight" is written before the
request, an unreadable answer or a crash leaves the copy "uncertain" and it is never sent again, a
refusal is retried at most three times. A store or Telegram failure is logged and the next pass goes on;
nothing here raises into the job queue.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core import i18n
from core.config import SpikeSettings
from delivery.outbox import MessageSender, Notify, chat_language, telegram_chat_id
from delivery.sender import Failed, Gone, Migrated, Retry, Sent, Unknown
from delivery.spikes import Story, find_spikes, key_title, render_spike
from store.db import DB_ERRORS, Store
from store.spikes import (
    SpikeSend,
    begin_spike_send,
    end_spike_send,
    pending_spike_sends,
    record_spike,
    resolve_spike_sends,
    spike_rows,
)

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SpikeReport:
    found: list[str] = field(default_factory=list)  # keys recorded as new spikes this pass
    sent: int = 0
    retried: int = 0
    failed: int = 0
    uncertain: int = 0


async def run_spikes(
    store: Store,
    sender: MessageSender,
    settings: SpikeSettings,
    rule_titles: Mapping[str, str],
    now: datetime,
    notify: Notify | None = None,
    entities: Collection[str] | None = None,
    language: str = i18n.DEFAULT,
) -> SpikeReport:
    """One pass: resolve interrupted sends, find and record new spikes, send what is pending.

    ``entities``: the entity groups that may spike (the rule files' ``kind: entity`` groups; None = every
    group named in the hits). An entity group's spike whose top stories are those of a spike already found
    in this pass (the rule's, or another group's) is recorded — its cooldown and /trend mark — but not
    sent again: one surge, one alert. Each copy is in its chat's interface language (``language`` when the
    chat chose none)."""
    report = SpikeReport()
    if not settings.enabled:
        return report
    try:
        report.uncertain += resolve_spike_sends(store)
        window = timedelta(seconds=settings.window)
        since = now - timedelta(days=settings.baseline_days) - window
        rows = spike_rows(store, since, now - window)
        if entities is not None:
            rows = [r for r in rows if not r.key.startswith("entity:") or r.key.partition(":")[2] in entities]
        told: set[tuple[Story, ...]] = set()
        for spike in sorted(find_spikes(rows, now, settings), key=lambda s: not s.key.startswith("rule:")):
            kind, _, name = spike.key.partition(":")
            title = key_title(spike.key, rule_titles)
            texts = {lang: render_spike(spike, title, settings.window, lang) for lang in i18n.LANGUAGES}
            text = texts[i18n.DEFAULT]
            rule = name if kind == "rule" else None
            d = spike.decision
            quiet = kind != "rule" and spike.stories in told
            told.add(spike.stories)
            recorded = record_spike(
                store, spike.key, now, now - window, d.count, d.mean, text, rule, send=not quiet, texts=texts
            )
            if recorded is not None:
                report.found.append(spike.key)
                log.info("spike_found key=%s stories=%d mean=%.2f", spike.key, d.count, d.mean)
        for send in pending_spike_sends(store, now):
            await _send(store, sender, send, now, report, notify, chat_language(store, send.chat_id, language))
    except DB_ERRORS as exc:  # the store is unwell: the store check tells admins; next pass tries again
        log.error("spikes_store_failed error=%r", exc)
    return report


async def _send(
    store: Store,
    sender: MessageSender,
    send: SpikeSend,
    now: datetime,
    report: SpikeReport,
    notify: Notify | None,
    lang: str,
) -> None:
    begin_spike_send(store, send)  # before the request: a crash from here on leaves it "uncertain"
    outcome = await sender.send(telegram_chat_id(send.chat_id), [send.text_in(lang)], preview=False)
    if isinstance(outcome, Sent):
        end_spike_send(store, send, "sent", message_id=outcome.message_ids[0] if outcome.message_ids else None)
        report.sent += 1
    elif isinstance(outcome, Unknown):
        end_spike_send(store, send, "uncertain", error=outcome.error)
        report.uncertain += 1
        log.error("spike_uncertain chat=%s spike=%d error=%r", send.chat_id, send.spike_id, outcome.error)
    elif isinstance(outcome, Retry):
        end_spike_send(store, send, "pending", error=outcome.error, retry_at=now + timedelta(seconds=outcome.after))
        report.retried += 1
    elif isinstance(outcome, Migrated):
        store.migrate_chat(send.chat_id, outcome.new_chat_id, now)
        end_spike_send(store, send, "pending", error="chat migrated")  # sent to the new chat next pass
    elif isinstance(outcome, Gone):
        store.set_paused(send.chat_id, True, outcome.reason, now)
        end_spike_send(store, send, "failed", error=outcome.reason)
        report.failed += 1
        if notify:
            chat, reason = send.chat_id, outcome.reason
            await notify(lambda lang: i18n.t("admin.chat_paused", lang, chat=chat, reason=reason))
    elif isinstance(outcome, Failed):
        end_spike_send(store, send, "failed", error=outcome.error)
        report.failed += 1
        log.error("spike_dropped chat=%s spike=%d error=%r", send.chat_id, send.spike_id, outcome.error)

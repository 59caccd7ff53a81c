"""Story-level instant alerts: one message per story per chat, edited as other outlets report it.

The first report of a story is alerted at once. A later report of the same story (another outlet, another
language, an update) within the story window sends no new message: its source joins the first alert,
whose text gets a line such as ``also: РИА Новости · Yonhap (ko) · NK News — 4 sources``.

Decisions and their order:

1. :func:`absorb` — before an instant alert is sent: if the subscription follows stories and already has
   an alert for this item's story (younger than ``WINDOW``), the item's source is added to it and its
   outbox row is done, in one transaction (``Store.absorb_into_story``); nothing is sent now.
2. :func:`record` — right after a first alert is sent: its message id is kept for (subscription, story),
   in the same transaction that marks it sent.
3. :func:`flush` — after each delivery round: every alert with new sources is edited, at most once per
   ``EDIT_EVERY`` seconds per message (sources arriving meanwhile are coalesced into the next edit). If
   the edit fails (message deleted, too old: 400 "message to edit not found"), the new sources go as a
   reply to that alert instead; Telegram being unreachable (429, 5xx) leaves the edit pending.

A crash between an absorb and its edit loses nothing (the sources are stored, the edit is still due);
a crash between an edit and its record repeats that one edit, which Telegram answers "message is not
modified" — counted as done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from core import i18n
from delivery.cluster import WINDOW
from delivery.render import MAX_MESSAGE, Keyboard, escape, visible_length
from delivery.sender import Outcome, Retry, Sent
from store import OutboxEntry, Store, StoryAlert

log = logging.getLogger(__name__)

EDIT_EVERY = timedelta(seconds=30)  # at most one edit per message per this interval
SOURCES_SHOWN = 30


@runtime_checkable
class StorySender(Protocol):
    async def send(
        self,
        chat_id: int | str,
        chunks: Sequence[str],
        *,
        preview: bool = True,
        skip: int = 0,
        reply_to: int | None = None,
    ) -> Outcome: ...

    async def edit(
        self,
        chat_id: int | str,
        message_id: int,
        text: str,
        *,
        preview: bool = True,
        reply_markup: Keyboard | None = None,
    ) -> Outcome: ...


def source_label(entry: OutboxEntry) -> str:
    """How a report is named in an alert's source line: the feed's name and its language (``Yonhap (ko)``),
    unless the name already says it."""
    name = entry.item.feed_name or entry.item.feed_url
    lang = entry.item.lang
    return f"{name} ({lang})" if lang and f"({lang})" not in name.lower() else name


def sources_line(sources: Sequence[str], lang: str = i18n.DEFAULT) -> str:
    """``also: РИА Новости · Yonhap (ko) · NK News — 4 sources`` (the first source is the alert's own), in
    the chat's interface language ``lang``."""
    others = list(sources[1:])
    shown = others[:SOURCES_SHOWN]
    line = i18n.t("story.also", lang, sources=" · ".join(escape(s) for s in shown))
    if len(others) > len(shown):
        line += f" +{len(others) - len(shown)}"
    return "<i>" + i18n.t("story.sources", lang, line=line, n=len(sources)) + "</i>"


def edited_text(alert: StoryAlert, lang: str = i18n.DEFAULT) -> str:
    """The first alert's text with the story's other sources under it."""
    text = f"{alert.text}\n\n{sources_line(alert.sources, lang)}"
    return text if visible_length(text) <= MAX_MESSAGE else alert.text


def absorb(store: Store, entry: OutboxEntry, now: datetime) -> bool:
    """True when ``entry`` joins an alert already sent for its story (nothing to send now); never for a
    subscription with ``stories: off``."""
    if not entry.stories or entry.story_id is None:
        return False
    alert = store.story_alert(entry.subscription_id, entry.story_id)
    if alert is None or now - alert.created_at > WINDOW:
        return False
    store.absorb_into_story(entry.id, alert, source_label(entry), now)
    log.info("story_absorbed chat=%s story=%s source=%r", entry.chat_id, entry.story_id, source_label(entry))
    return True


def record(store: Store, entry: OutboxEntry, outcome: Sent, text: str, now: datetime) -> None:
    """The first alert of a story went out: mark it sent and keep its message id, together."""
    message_id = outcome.message_ids[0] if outcome.message_ids else None
    if entry.story_id is None or message_id is None:
        store.mark_sent([entry.id], now, chat_id=entry.chat_id, message_id=message_id)
        return
    store.record_story_alert(
        entry.id,
        entry.subscription_id,
        entry.story_id,
        entry.chat_id,
        outcome.message_ids[0],
        text,
        source_label(entry),
        now,
    )


async def flush(
    store: Store,
    sender: StorySender,
    now: Callable[[], datetime],
    chat_id_of: Callable[[str], int | str],
    *,
    every: timedelta = EDIT_EVERY,
    language_of: Callable[[str], str] = lambda chat: i18n.DEFAULT,
    keyboard_of: Callable[[int], Keyboard | None] = lambda item_id: None,
) -> int:
    """Edit (or reply to) every alert with new sources whose last edit is ``every`` old; returns how many
    messages were updated. ``language_of``: a chat's interface language (the sources line's words);
    ``keyboard_of``: the buttons an alert for that item carries (👍/👎), sent again with each edit since
    Telegram drops the buttons of an edited message that does not repeat them."""
    updated = 0
    for alert in store.dirty_story_alerts():
        if alert.edited_at is not None and now() - alert.edited_at < every:
            continue  # coalesced into a later edit
        chat = chat_id_of(alert.chat_id)
        lang = language_of(alert.chat_id)
        replied = False
        outcome: Outcome
        if alert.replies == 0:
            item_id = store.story_alert_item(alert)
            keyboard = keyboard_of(item_id) if item_id is not None else None
            outcome = await sender.edit(
                chat, alert.message_id, edited_text(alert, lang), preview=False, reply_markup=keyboard
            )
        else:
            outcome = Retry(0, "edits replaced by replies")
        if not isinstance(outcome, Sent) and not (isinstance(outcome, Retry) and alert.replies == 0):
            # the alert cannot be edited (deleted, too old): the new sources go as a reply to it
            line = sources_line(alert.sources, lang)
            outcome = await sender.send(chat, [line], preview=False, reply_to=alert.message_id)
            replied = True
        if isinstance(outcome, Sent):
            store.story_alert_updated(alert, now(), replied=replied)
            updated += 1
            log.info(
                "story_alert_updated chat=%s story=%s sources=%d reply=%s",
                alert.chat_id,
                alert.story_id,
                len(alert.sources),
                replied,
            )
        else:
            log.warning("story_alert_update_failed chat=%s story=%s outcome=%r", alert.chat_id, alert.story_id, outcome)
    return updated

"""Daily digests: when one is due, and what it says.

``digest_due`` is a pure function of the subscription's local time and its last digest, so a digest
missed while the bot was down is sent once on start-up, never several times. ``build_digest`` turns the
queued entries into Telegram HTML messages: a header (period, counts), then one section per rule, the
same story from several outlets as one entry listing its sources, newest first, each with its *why*.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from core import i18n
from delivery.cluster import Cluster, Entry, cluster
from delivery.render import MAX_MESSAGE, escape, labels_suffix, link, quote, shorten, source_name, visible_length

MAX_TITLE = 300
MAX_SOURCES_SHOWN = 4
T = TypeVar("T")


def local_instant(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The instant (UTC) at which the clock in ``tz`` reads ``at`` on ``day``.

    A wall-clock time skipped by a spring-forward transition becomes the first instant that exists
    after it (the transition itself: 02:30 in Berlin on the last Sunday of March is 03:00 CEST); one
    repeated by a fall-back transition is its first occurrence (``fold=0``)."""
    wanted = datetime.combine(day, at)
    first = datetime.combine(day, at, tzinfo=tz).astimezone(UTC)  # fold=0: the offset before a change
    if first.astimezone(tz).replace(tzinfo=None) == wanted:
        return first
    # In a gap: fold=0 lands after the transition, fold=1 before it; the transition is the first instant
    # whose wall clock reads ``at`` or later. Offsets change on whole seconds, so bisect to the second.
    low = datetime.combine(day, at, tzinfo=tz).replace(fold=1).astimezone(UTC)
    high = first
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(tz).replace(tzinfo=None) >= wanted:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def scheduled_before(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The latest instant ≤ now at which a digest at local ``at`` was scheduled (see :func:`local_instant`).

    Compared as instants, never as wall-clock times: two aware datetimes in the same zone compare by wall
    clock, which made a skipped 02:30 "due" on every tick for the half hour after the transition."""
    today = now.astimezone(tz).date()
    for day in (today, today - timedelta(days=1), today - timedelta(days=2)):  # two back: Apia skipped a day
        candidate = local_instant(day, at, tz)
        if candidate <= now:
            return candidate
    raise AssertionError("unreachable: a local time two days ago is always in the past")  # pragma: no cover


def digest_due(
    now: datetime, at: time, tz: ZoneInfo, last_digest_at: datetime | None, created_at: datetime | None = None
) -> datetime | None:
    """The scheduled time of the digest that is due now, or None."""
    scheduled = scheduled_before(now, at, tz)
    reference = last_digest_at or created_at
    if reference is not None and reference >= scheduled:
        return None
    return scheduled


def split_blocks(blocks: Sequence[str], limit: int = MAX_MESSAGE) -> list[str]:
    """Join blocks with blank lines into messages of at most ``limit`` visible characters.

    Splits only between blocks, so never inside a tag or an entity; a single block over the limit
    (which the renderers never produce) is sent on its own.
    """
    return [text for text, _ in split_tagged([(block, ()) for block in blocks], limit)]


def split_tagged(blocks: Sequence[tuple[str, tuple[T, ...]]], limit: int = MAX_MESSAGE) -> list[tuple[str, list[T]]]:
    """:func:`split_blocks` that also says which tags (e.g. entry numbers) went into each message."""
    messages: list[tuple[str, list[T]]] = []
    current: list[str] = []
    tags: list[T] = []
    size = 0
    for block, block_tags in blocks:
        length = visible_length(block)
        extra = length + (2 if current else 0)
        if current and size + extra > limit:
            messages.append(("\n\n".join(current), tags))
            current, tags, size = [], [], 0
            extra = length
        current.append(block)
        tags.extend(block_tags)
        size += extra
    if current:
        messages.append(("\n\n".join(current), tags))
    return messages


def _entry_block(c: Cluster, tz: ZoneInfo, number: int | None = None, lang: str = i18n.DEFAULT) -> str:
    lead = c.lead.item
    when = (
        max(e.item.published for e in c.members if e.item.published)
        if any(e.item.published for e in c.members)
        else None
    )
    stamp = when.astimezone(tz).strftime("%d.%m %H:%M") if when else ""
    sources = []
    seen: set[str] = set()
    several_languages = len(c.languages) > 1
    for e in c.members:
        name = e.item.feed_name or e.item.feed_url
        if name in seen:
            continue
        seen.add(name)
        label = link(source_name(name), e.item.link) + labels_suffix(e.item.labels)
        sources.append(f"{label} ({e.item.lang})" if several_languages and e.item.lang else label)
    shown = ", ".join(sources[:MAX_SOURCES_SHOWN])
    if len(sources) > MAX_SOURCES_SHOWN:
        shown += f" +{len(sources) - MAX_SOURCES_SHOWN}"
    if len(sources) > 1:
        shown += i18n.t("digest.n_sources", lang, n=len(sources))
    why: dict[str, list[str]] = {}
    for e in c.members:
        for m in e.matches:
            for group, texts in m.why().items():
                bucket = why.setdefault(group, [])
                bucket.extend(t for t in texts if t not in bucket)
    why_text = " · ".join(f"{escape(g)}: " + ", ".join(quote(t) for t in ts[:2]) for g, ts in why.items())
    bullet = "•" if number is None else f"{number}."  # numbered when the message carries 👍/👎 buttons
    head = f"{bullet} <b>{link(shorten(lead.title, MAX_TITLE), lead.link)}</b>"
    meta = f"{stamp} · {shown}" if stamp else shown
    return f"{head}\n{meta}\n<i>{why_text}</i>"


def build_digest(
    entries: Sequence[Entry],
    *,
    period_start: datetime | None,
    period_end: datetime,
    tz: ZoneInfo,
    rule_titles: dict[str, str] | None = None,
    send_empty: bool = False,
) -> list[str]:
    """The digest as Telegram HTML messages (each ≤ 4096 visible characters); [] when there is nothing."""
    parts = build_digest_parts(
        entries,
        period_start=period_start,
        period_end=period_end,
        tz=tz,
        rule_titles=rule_titles,
        send_empty=send_empty,
    )
    return [text for text, _ in parts]


def build_digest_parts(
    entries: Sequence[Entry],
    *,
    period_start: datetime | None,
    period_end: datetime,
    tz: ZoneInfo,
    rule_titles: dict[str, str] | None = None,
    send_empty: bool = False,
) -> list[tuple[str, list[int]]]:
    """:func:`build_digest`, each message with the positions in ``entries`` of the items it shows (so
    a digest cut short by an error can be finished without repeating what already arrived)."""
    messages = build_digest_messages(
        entries,
        period_start=period_start,
        period_end=period_end,
        tz=tz,
        rule_titles=rule_titles,
        send_empty=send_empty,
    )
    return [(m.text, m.shown) for m in messages]


@dataclass(frozen=True, slots=True)
class DigestMessage:
    text: str
    shown: list[int]  # positions in ``entries`` of every item the message shows
    stories: list[tuple[int, int]]  # (entry number, position of the story's lead item), when numbered


def build_digest_messages(
    entries: Sequence[Entry],
    *,
    period_start: datetime | None,
    period_end: datetime,
    tz: ZoneInfo,
    rule_titles: dict[str, str] | None = None,
    send_empty: bool = False,
    numbered: bool = False,
    lang: str = i18n.DEFAULT,
) -> list[DigestMessage]:
    """:func:`build_digest_parts`; with ``numbered`` each story is "1.", "2.", … across the whole
    digest (what the 👍/👎 buttons under each message refer to), and each message says which."""
    start = period_start.astimezone(tz).strftime("%d.%m.%Y %H:%M") if period_start else "…"
    end = period_end.astimezone(tz).strftime("%d.%m.%Y %H:%M")
    if not entries:
        empty = i18n.t("digest.empty", lang, start=start, end=end, zone=escape(str(tz)))
        return [DigestMessage(empty, [], [])] if send_empty else []
    position = {id(e): i for i, e in enumerate(entries)}
    stories = cluster(entries)
    sources = {e.item.feed_name or e.item.feed_url for e in entries}
    counts = (
        i18n.t("digest.stories", lang, n=len(stories)),
        i18n.t("digest.items", lang, n=len(entries)),
        i18n.t("digest.sources", lang, n=len(sources)),
    )
    header = i18n.t("digest.title", lang, start=start, end=end, zone=escape(str(tz))) + "\n" + " · ".join(counts)
    sections: dict[str, list[Cluster]] = {}
    for story in stories:
        sections.setdefault(story.rules[0], []).append(story)
    # each block is tagged with (position, story number) per item it shows; the number only on the lead
    blocks: list[tuple[str, tuple[tuple[int, int], ...]]] = [(header, ())]
    number = 0
    for rule, members in sections.items():
        title = shorten((rule_titles or {}).get(rule) or rule, MAX_TITLE)
        blocks.append((f"<b>▍{escape(title)}</b> ({len(members)})", ()))
        for story in sorted(members, key=lambda c: c.newest, reverse=True):
            number += 1
            tags = tuple((position[id(e)], number if e is story.lead else 0) for e in story.members)
            blocks.append((_entry_block(story, tz, number if numbered else None, lang), tags))
    return [
        DigestMessage(text, [p for p, _ in tags], [(n, p) for p, n in tags if n and numbered])
        for text, tags in split_tagged(blocks)
    ]

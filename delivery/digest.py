"""Daily digests: when one is due, and what it says.

``digest_due`` is a pure function of the subscription's local time and its last digest, so a digest
missed while the bot was down is sent once on start-up, never several times. ``build_digest`` turns the
queued entries into Telegram HTML messages: a header (period, counts), then one section per rule, the
same story from several outlets as one entry listing its sources, newest first, each with its *why*.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo

from delivery.cluster import Cluster, Entry, cluster
from delivery.render import MAX_MESSAGE, escape, link, quote, shorten, source_name, visible_length

MAX_TITLE = 300
MAX_SOURCES_SHOWN = 4
T = TypeVar("T")


def scheduled_before(now: datetime, at: time, tz: ZoneInfo) -> datetime:
    """The latest moment ≤ now at which the local clock read ``at``."""
    local = now.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tzinfo=tz)
    if candidate > local:
        candidate = datetime.combine(local.date() - timedelta(days=1), at, tzinfo=tz)
    return candidate


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


def _entry_block(c: Cluster, tz: ZoneInfo) -> str:
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
        label = link(source_name(name), e.item.link)
        sources.append(f"{label} ({e.item.lang})" if several_languages and e.item.lang else label)
    shown = ", ".join(sources[:MAX_SOURCES_SHOWN])
    if len(sources) > MAX_SOURCES_SHOWN:
        shown += f" +{len(sources) - MAX_SOURCES_SHOWN}"
    if len(sources) > 1:
        shown += f" — {len(sources)} sources"
    why: dict[str, list[str]] = {}
    for e in c.members:
        for m in e.matches:
            for group, texts in m.why().items():
                bucket = why.setdefault(group, [])
                bucket.extend(t for t in texts if t not in bucket)
    why_text = " · ".join(f"{escape(g)}: " + ", ".join(quote(t) for t in ts[:2]) for g, ts in why.items())
    head = f"• <b>{link(shorten(lead.title, MAX_TITLE), lead.link)}</b>"
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
    start = period_start.astimezone(tz).strftime("%d.%m.%Y %H:%M") if period_start else "…"
    end = period_end.astimezone(tz).strftime("%d.%m.%Y %H:%M")
    if not entries:
        return [(f"🗞 <b>Digest</b> {start} – {end} ({escape(str(tz))}): nothing new.", [])] if send_empty else []
    position = {id(e): i for i, e in enumerate(entries)}
    stories = cluster(entries)
    sources = {e.item.feed_name or e.item.feed_url for e in entries}
    header = (
        f"🗞 <b>Digest</b> {start} – {end} ({escape(str(tz))})\n"
        f"{len(stories)} stories · {len(entries)} items · {len(sources)} sources"
    )
    sections: dict[str, list[Cluster]] = {}
    for story in stories:
        sections.setdefault(story.rules[0], []).append(story)
    blocks: list[tuple[str, tuple[int, ...]]] = [(header, ())]
    for rule, members in sections.items():
        title = shorten((rule_titles or {}).get(rule) or rule, MAX_TITLE)
        blocks.append((f"<b>▍{escape(title)}</b> ({len(members)})", ()))
        for story in sorted(members, key=lambda c: c.newest, reverse=True):
            blocks.append((_entry_block(story, tz), tuple(position[id(e)] for e in story.members)))
    return split_tagged(blocks)

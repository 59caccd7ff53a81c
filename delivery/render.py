"""Telegram HTML for alerts: every feed-supplied string escaped, links only http(s), ≤ 4096 characters.

Telegram's HTML parse mode knows only a handful of tags (b, i, u, s, a, code, pre, blockquote, …);
every other ``<``, ``>`` and ``&`` must be escaped, or the whole message is refused. Parse mode HTML is
set once, in the application's Defaults.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from core import i18n
from core.models import Item, Match, label_text

MAX_MESSAGE = 4096
SUMMARY_CHARS = 600
QUOTE_CHARS = 80  # a matched text shown in a why line (a wide regex can match thousands of characters)
NAME_CHARS = 100  # a feed's name as a source
_TAG = re.compile(r"<[^>]+>")

Keyboard = tuple[tuple[tuple[str, str], ...], ...]  # inline keyboard rows of (button text, callback data)
VoteData = Callable[[int, int], str]  # (item id, 1 for 👍 / 0 for 👎) -> signed callback data
MAX_BUTTONS = 100  # Telegram's limit per message
ENTRIES_PER_ROW = 2  # a digest's vote row: "1 👍", "1 👎", "2 👍", "2 👎"


def escape(text: str) -> str:
    return html.escape(text, quote=False)


def safe_link(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL, else None (no javascript:, data:, relative links)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def link(text: str, url: str | None) -> str:
    target = safe_link(url)
    label = escape(text)
    return f'<a href="{html.escape(target, quote=True)}">{label}</a>' if target else label


def shorten(text: str, limit: int) -> str:
    """Cut ``text`` at a word boundary so that it is at most ``limit`` characters, ending with …"""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:—-") + "…"


def excerpt(summary: str, matches: Sequence[Match], limit: int = SUMMARY_CHARS) -> str:
    """At most ``limit`` characters of ``summary``: its start, or — when the first hit in it lies past
    what the start would show (an article's full text, see service/enrich.py) — the passage around
    that hit, from a word boundary, with … on each cut side. Hit offsets refer to the summary as it was
    matched, which is the summary stored and shown."""
    starts = [h.start for m in matches for h in m.hits if h.field == "summary" and 0 <= h.start < len(summary)]
    first = min(starts, default=0)
    if len(" ".join(summary[: first + 1].split())) < limit * 2 // 3:
        return shorten(summary, limit)
    begin = max(0, first - limit // 3)
    space = summary.rfind(" ", 0, begin + 1) if begin else -1
    begin = space + 1 if space > first - limit // 2 else begin
    return "…" + shorten(summary[begin:], limit - 1)


def visible_length(html_text: str) -> int:
    """Length of the text Telegram counts: tags removed, entities decoded."""
    return len(html.unescape(_TAG.sub("", html_text)))


def strip_html(html_text: str) -> str:
    """Plain text of a rendered message (the fallback when Telegram refuses the entities)."""
    return html.unescape(_TAG.sub("", html_text))


def quote(text: str) -> str:
    """A matched text in a why line: «…», escaped, at most :data:`QUOTE_CHARS` characters."""
    return f"«{escape(shorten(text, QUOTE_CHARS))}»"


def source_name(name: str) -> str:
    """A feed's name as shown for a source (not escaped), at most :data:`NAME_CHARS` characters."""
    return shorten(name, NAME_CHARS)


def labels_suffix(labels: Sequence[str]) -> str:
    """`` · state media`` for a source's labels (escaped; "" when it has none), as in ``TASS · state media``."""
    return "".join(f" · {escape(label_text(label))}" for label in labels)


def render_why(matches: Sequence[Match], lang: str = i18n.DEFAULT) -> str:
    """Why it matched: the most urgent rule's groups and texts in full, the other rules by name.

    ``🔎 dprk_russia_military — DPRK: «КНДР» · RUSSIA: «российских» · MILITARY: «военных» · relevance 0.93``
    """
    if not matches:
        return ""
    ordered = sorted(matches, key=lambda m: m.priority != "instant")  # stable: file order otherwise
    main = ordered[0]
    groups = " · ".join(
        f"{escape(group)}: " + ", ".join(quote(t) for t in texts[:3]) for group, texts in main.why().items()
    )
    line = f"🔎 <i>{escape(main.rule)}</i> — {groups}"
    if main.score is not None:
        line += " · " + i18n.t(
            "alert.relevance", lang, score=f"{main.score:.2f}"
        )  # rules/score.py; the item's, so the same on every rule
    if len(ordered) > 1:
        line += "\n<i>" + i18n.t("alert.also", lang, rules=", ".join(escape(m.rule) for m in ordered[1:])) + "</i>"
    return line


def render_alert(item: Item, matches: Sequence[Match], lang: str = i18n.DEFAULT) -> str:
    """An instant alert: linked bold title, source and time, a short excerpt, and why it matched; the
    frame (not the feed's own title and summary) in the chat's interface language ``lang``."""
    urgent = any(m.priority == "instant" for m in matches)
    head = ("🚨 " if urgent else "📰 ") + f"<b>{link(item.title or i18n.t('alert.no_title', lang), item.link)}</b>"
    source = escape(source_name(item.feed_name or urlsplit(item.feed_url).netloc or item.feed_url))
    when = item.published.strftime("%Y-%m-%d %H:%M UTC") if item.published else ""
    meta = f"<i>{source}{labels_suffix(item.labels)}</i>" + (f" · {when}" if when else "")
    parts = [head, meta]
    if item.summary:
        parts.append(escape(excerpt(item.summary, matches)))
    parts.append(render_why(matches, lang))
    text = "\n".join(parts)
    if visible_length(text) > MAX_MESSAGE:  # only a pathological title could do this
        text = "\n".join(
            [
                head if visible_length(head) < 1000 else escape(shorten(item.title, 900)),
                meta,
                render_why(matches[:3], lang),
            ]
        )
    if visible_length(text) > MAX_MESSAGE:  # never: every part above is capped; Telegram would refuse it
        text = escape(shorten(strip_html(text), MAX_MESSAGE))
    return text


def vote_keyboard(item_id: int, data: VoteData) -> Keyboard:
    """An instant alert's 👍 / 👎 pair."""
    return ((("👍", data(item_id, 1)), ("👎", data(item_id, 0))),)


def digest_vote_keyboard(numbered: Sequence[tuple[int, int]], data: VoteData) -> Keyboard | None:
    """A digest message's buttons: for each numbered entry ``(number, item id)`` a "N 👍" / "N 👎" pair,
    :data:`ENTRIES_PER_ROW` entries a row (so a message of 12 entries is 6 short rows, not 12), at most
    :data:`MAX_BUTTONS` buttons (entries past the 50th of one message get none); None without entries."""
    pairs = [
        ((f"{n} 👍", data(item_id, 1)), (f"{n} 👎", data(item_id, 0))) for n, item_id in numbered[: MAX_BUTTONS // 2]
    ]
    rows = tuple(
        tuple(button for pair in pairs[i : i + ENTRIES_PER_ROW] for button in pair)
        for i in range(0, len(pairs), ENTRIES_PER_ROW)
    )
    return rows or None


FOLD_TITLE_CHARS = 150


def render_fold(
    header: str,
    entries: Sequence[tuple[int, Item]],
    *,
    in_digest: bool,
    limit: int = MAX_MESSAGE,
    lang: str = i18n.DEFAULT,
) -> list[tuple[str, list[int]]]:
    """Many alerts as one message (or a few): ``header`` and, unless the chat's digest carries them, one
    compact line per item (linked title, source), split at ``limit``. Each message with the ids it covers.

    Used for alerts that are too old when they finally go out, and for a pass that would flood a chat."""
    ids = [outbox_id for outbox_id, _ in entries]
    if in_digest:
        return [(i18n.t("fold.see_digest", lang, header=header), ids)]
    parts: list[tuple[str, list[int]]] = []
    lines: list[str] = [i18n.t("fold.list", lang, header=header)]
    shown: list[int] = []
    for outbox_id, item in entries:
        source = escape(source_name(item.feed_name or urlsplit(item.feed_url).netloc or item.feed_url))
        title = shorten(item.title or i18n.t("alert.no_title", lang), FOLD_TITLE_CHARS)
        line = f"• {link(title, item.link)} — <i>{source}</i>"
        if shown and visible_length("\n".join([*lines, line])) > limit:
            parts.append(("\n".join(lines), shown))
            lines, shown = [i18n.t("fold.continued", lang, header=header)], []
        lines.append(line)
        shown.append(outbox_id)
    parts.append(("\n".join(lines), shown))
    return parts

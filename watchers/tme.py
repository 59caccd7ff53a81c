"""Public Telegram channels, read from their web preview ``https://t.me/s/NAME``: HTML → one Item a post.

Analysts read Telegram channels first, and a channel has no feed; its public preview page lists the
latest ~20 posts as ``div.tgme_widget_message[data-post="NAME/ID"]`` widgets, oldest first, and
``?before=ID`` gives the page of posts older than ID. This module is pure: bytes in, a
:class:`ChannelPage` out; watchers/sources.py fetches, pages backwards and decides what is an error.

A post becomes: uid ``t.me/<channel, lowercased>/<id>`` (usernames are case-insensitive; stable across
edits), link ``https://t.me/NAME/ID``, title = the text's first line, summary = the rest, then one line
of what the text alone does not say (forwarded from whom, photos, videos, files, views); a poll's
question and options are part of the text, since they are what the post says. Service messages
("channel photo updated", pinned…), "post not found" stubs and posts with neither text nor media are
skipped and counted.

Parser: lxml.html (libxml2) with selectors compiled once. Measured on the fixture channels
(tests/fixtures/tme, 20 posts a page): lxml parses and extracts a page in ~1.6 ms, selectolax
(Lexbor) in ~0.9 ms; both are far below the fetch (hundreds of ms) and a poll's interval (minutes). lxml
won because page sources need XPath as well as CSS, which selectolax lacks: one HTML parser, one
dependency, one set of quirks. Never regular expressions over HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import lxml.html
from lxml import etree

from core.models import Item, cap_text
from core.selectors import compile_selector

TITLE_MAX = 200  # a first line longer than this is cut at a word for the title; the summary keeps it all
_MESSAGES = compile_selector("div.tgme_widget_message[data-post]")
_CHANNEL_INFO = compile_selector(".tgme_channel_info, .tgme_channel_info_header")
_CHANNEL_TITLE = compile_selector(".tgme_channel_info_header_title, .tgme_page_title")
# the post's own text is a child of the bubble; a reply's quoted text sits deeper, inside the reply link
_TEXT = compile_selector(
    "./div[contains(@class, 'tgme_widget_message_bubble')]/div[contains(@class, 'js-message_text')]", xpath=True
)
_FORWARDED = compile_selector(".tgme_widget_message_forwarded_from_name")
_PHOTOS = compile_selector(".tgme_widget_message_photo_wrap")
_VIDEOS = compile_selector(".tgme_widget_message_video_player, .tgme_widget_message_roundvideo_player")
_DOCUMENTS = compile_selector(".tgme_widget_message_document_title")
_POLL_QUESTION = compile_selector(".tgme_widget_message_poll_question")
_POLL_OPTIONS = compile_selector(".tgme_widget_message_poll_option_text")
_VIEWS = compile_selector(".tgme_widget_message_views")
_TIME = compile_selector(".tgme_widget_message_date time[datetime], time[datetime]")
_ERROR = compile_selector(".tgme_widget_message_error")
_SPACES = re.compile(r"[ \t\u00a0\u200b]+")
_POST = re.compile(r"^([A-Za-z0-9_]+)/(\d+)$")


@dataclass(frozen=True, slots=True)
class ChannelPage:
    """What one t.me/s/ page holds. ``ids`` counts every post widget (skipped ones too), so paging
    backwards steps past a page of service messages."""

    items: tuple[Item, ...]
    ids: tuple[int, ...]  # message ids of all post widgets on the page, ascending
    skipped: int = 0  # service messages, deleted stubs, posts with neither text nor media
    is_preview: bool = False  # the page is a channel preview (header or posts), not t.me's contact page
    title: str = ""  # the channel's display name
    authors: frozenset[str] = frozenset()  # channel usernames the posts belong to, lowercased

    @property
    def oldest_id(self) -> int | None:
        return self.ids[0] if self.ids else None

    @property
    def newest_id(self) -> int | None:
        return self.ids[-1] if self.ids else None


def element_text(element: Any) -> str:
    """An element's text with <br> and block ends as line breaks, spaces collapsed, script/style left out."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in ("script", "style", "noscript", "template"):
            if node.tail:
                parts.append(node.tail)
            return
        if tag == "br":
            parts.append("\n")
        elif node.text:
            parts.append(node.text)
        for child in node:
            walk(child)
        if tag in ("p", "div", "li", "blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "tr"):
            parts.append("\n")
        if node.tail and node is not element:
            parts.append(node.tail)

    walk(element)
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parts).splitlines())
    return "\n".join(line for line in lines if line)


def split_title(text: str) -> tuple[str, str]:
    """Title = the first line (cut at a word past :data:`TITLE_MAX`, with the whole line kept in the
    summary); summary = the rest."""
    first, _, rest = text.partition("\n")
    if len(first) <= TITLE_MAX:
        return first, rest.strip()
    cut = first[:TITLE_MAX].rsplit(" ", 1)[0] or first[:TITLE_MAX]
    return cut + "…", text


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _post(widget: Any, channel: str, feed_url: str, feed_name: str, lang: str | None) -> tuple[int, str, Item | None]:
    """(message id, author channel, the Item or None when the post is skipped)."""
    found = _POST.match(widget.get("data-post", "").strip())
    if found is None:
        raise ValueError(f"bad data-post {widget.get('data-post')!r}")
    author, message_id = found.group(1), int(found.group(2))
    classes = (widget.get("class") or "").split()
    if "service_message" in classes or _ERROR(widget):
        return message_id, author, None
    texts = _TEXT(widget)
    body = element_text(texts[0]) if texts else ""
    question = _POLL_QUESTION(widget)
    if question:
        options = [element_text(o) for o in _POLL_OPTIONS(widget)]
        poll = "📊 " + element_text(question[0]) + "".join(f"\n• {o}" for o in options if o)
        body = f"{body}\n{poll}" if body else poll
    notes: list[str] = []
    forwarded = _FORWARDED(widget)
    if forwarded:
        notes.append(f"Forwarded from {element_text(forwarded[0])}")
    media: list[str] = []
    if photos := len(_PHOTOS(widget)):
        media.append(_plural(photos, "photo"))
    if videos := len(_VIDEOS(widget)):
        media.append(_plural(videos, "video"))
    documents = [element_text(d) for d in _DOCUMENTS(widget)]
    if documents:
        media.append("file " + ", ".join(documents))
    notes += media
    views = _VIEWS(widget)
    if views and (count := element_text(views[0])):
        notes.append(f"{count} views")
    if not body and not media:
        return message_id, author, None
    title, summary = split_title(body) if body else ("[" + ", ".join(media) + "]", "")
    if notes:
        summary = f"{summary}\n[{' · '.join(notes)}]" if summary else f"[{' · '.join(notes)}]"
    times = _TIME(widget)
    item = Item(
        feed_url=feed_url,
        uid=f"t.me/{author.lower()}/{message_id}",
        title=cap_text(title),
        summary=cap_text(summary),
        link=f"https://t.me/{author}/{message_id}",
        published=_parse_time(times[0].get("datetime")) if times else None,
        lang=lang,
        feed_name=feed_name,
    )
    return message_id, author, item


def parse_channel(
    body: bytes | str, *, channel: str, feed_url: str, feed_name: str = "", lang: str | None = None
) -> ChannelPage:
    """Parse one t.me/s/ page (the body only; never fetches). Raises nothing on odd markup: a widget that
    cannot be read is skipped and counted."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if not text.strip():
        return ChannelPage((), ())
    try:
        doc = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return ChannelPage((), ())
    items: list[Item] = []
    ids: list[int] = []
    authors: set[str] = set()
    skipped = 0
    for widget in _MESSAGES(doc):
        try:
            message_id, author, item = _post(widget, channel, feed_url, feed_name, lang)
        except ValueError:
            skipped += 1
            continue
        ids.append(message_id)
        authors.add(author.lower())
        if item is None:
            skipped += 1
        else:
            items.append(item)
    titles = _CHANNEL_TITLE(doc)
    return ChannelPage(
        items=tuple(sorted(items, key=lambda i: int(i.uid.rsplit("/", 1)[1]))),
        ids=tuple(sorted(ids)),
        skipped=skipped,
        is_preview=bool(_CHANNEL_INFO(doc) or ids),
        title=element_text(titles[0]) if titles else "",
        authors=frozenset(authors),
    )

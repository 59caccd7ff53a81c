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

Parser: lxml (libxml2's HTML parser, plain elements), with one walk over each post widget collecting
its parts by class. Measured with ``python3 bench/sources.py`` on the fixture channels (3 pages, 15
posts, 41 KiB): ~1.1 ms a page, ~4,500 posts/s — about feedparser's rate on an RSS body of the same
posts; a first version with a cssselect selector per part took 4.4 ms a page. selectolax (Lexbor) does
a comparable extraction in ~0.3 ms a page (the bench prints it when selectolax is installed), but both
are far below one fetch (hundreds of ms) and a poll's interval (minutes), and page sources need XPath,
which selectolax lacks: lxml gives one HTML parser, one dependency, one set of quirks. Never regular
expressions over HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

from core.models import Item, cap_text

TITLE_MAX = 200  # a first line longer than this is cut at a word for the title; the summary keeps it all
# plain XPath and a class check in Python: cssselect's translation (normalize-space, concat per node)
# cost more than the rest of the page's parsing together
_WIDGETS = etree.XPath("//div[@data-post]")
_HEADER = etree.XPath("//div[contains(@class, 'tgme_channel_info') or contains(@class, 'tgme_page_title')]")
_HTML = etree.HTMLParser(remove_comments=True)  # plain elements: lxml.html's class lookup per node cost ~30 %
# the classes a post's parts carry; one walk over the widget finds them all (a CSS selector each cost 10×)
_BUBBLE, _TEXT = "tgme_widget_message_bubble", "js-message_text"
_FORWARDED = "tgme_widget_message_forwarded_from_name"
_PHOTO = "tgme_widget_message_photo_wrap"
_VIDEOS = ("tgme_widget_message_video_player", "tgme_widget_message_roundvideo_player")
_DOCUMENT = "tgme_widget_message_document_title"
_POLL_QUESTION, _POLL_OPTION = "tgme_widget_message_poll_question", "tgme_widget_message_poll_option_text"
_VIEWS, _ERROR = "tgme_widget_message_views", "tgme_widget_message_error"
_WANTED = frozenset(
    [_BUBBLE, _TEXT, _FORWARDED, _PHOTO, *_VIDEOS, _DOCUMENT, _POLL_QUESTION, _POLL_OPTION, _VIEWS, _ERROR]
)
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
    parts: dict[str, list[Any]] = {}
    stamp: str | None = None
    for node in widget.iter():
        if not isinstance(node.tag, str):
            continue  # comments, processing instructions
        if node.tag == "time" and stamp is None and node.get("datetime"):
            stamp = node.get("datetime")
        for name in (node.get("class") or "").split():
            if name in _WANTED:
                parts.setdefault(name, []).append(node)
    if "service_message" in classes or _ERROR in parts:
        return message_id, author, None
    # the post's own text is a child of the bubble; a reply's quoted text sits deeper, inside the reply link
    texts = [t for t in parts.get(_TEXT, ()) if _BUBBLE in (t.getparent().get("class") or "").split()]
    body = element_text(texts[0]) if texts else ""
    if question := parts.get(_POLL_QUESTION):
        options = [element_text(o) for o in parts.get(_POLL_OPTION, ())]
        poll = "📊 " + element_text(question[0]) + "".join(f"\n• {o}" for o in options if o)
        body = f"{body}\n{poll}" if body else poll
    notes: list[str] = []
    if forwarded := parts.get(_FORWARDED):
        notes.append(f"Forwarded from {element_text(forwarded[0])}")
    media: list[str] = []
    if photos := len(parts.get(_PHOTO, ())):
        media.append(_plural(photos, "photo"))
    if videos := sum(len(parts.get(v, ())) for v in _VIDEOS):
        media.append(_plural(videos, "video"))
    if documents := [element_text(d) for d in parts.get(_DOCUMENT, ())]:
        media.append("file " + ", ".join(documents))
    notes += media
    views = parts.get(_VIEWS)
    if views and (count := element_text(views[0])):
        notes.append(f"{count} views")
    if not body and not media:
        return message_id, author, None
    title, summary = split_title(body) if body else ("[" + ", ".join(media) + "]", "")
    if notes:
        summary = f"{summary}\n[{' · '.join(notes)}]" if summary else f"[{' · '.join(notes)}]"
    item = Item(
        feed_url=feed_url,
        uid=f"t.me/{author.lower()}/{message_id}",
        title=cap_text(title),
        summary=cap_text(summary),
        link=f"https://t.me/{author}/{message_id}",
        published=_parse_time(stamp),
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
        doc = etree.fromstring(text, _HTML)
    except (etree.ParserError, etree.XMLSyntaxError, ValueError):
        return ChannelPage((), ())
    if doc is None:
        return ChannelPage((), ())
    items: list[Item] = []
    ids: list[int] = []
    authors: set[str] = set()
    skipped = 0
    for widget in _WIDGETS(doc):
        if "tgme_widget_message" not in (widget.get("class") or "").split():
            continue
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
    header = [(node, set((node.get("class") or "").split())) for node in _HEADER(doc)]
    titles = [node for node, names in header if names & {"tgme_channel_info_header_title", "tgme_page_title"}]
    return ChannelPage(
        items=tuple(sorted(items, key=lambda i: int(i.uid.rsplit("/", 1)[1]))),
        ids=tuple(sorted(ids)),
        skipped=skipped,
        is_preview=bool(ids) or any(names & {"tgme_channel_info", "tgme_channel_info_header"} for _, names in header),
        title=element_text(titles[0]) if titles else "",
        authors=frozenset(authors),
    )

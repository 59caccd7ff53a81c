"""Parsing a fetched body (lxml fast path, feedparser the reference) and normalising entries to Items.

feedparser's dicts stop here. An entry becomes an Item with its identity keys (guid, canonical link,
fingerprint: :func:`core.identity.entry_keys`, which decides nothing yet), plain-text title and summary (HTML stripped,
entities decoded, whitespace collapsed), a UTC ``published`` time, and a language. A ``bozo`` feed that
still has entries is used; one with no entries is a per-feed error, and so is a feed whose every entry
lacks a title and summary (a well-formed empty feed is not). A bad entry is skipped and counted, never
allowed to break the rest.
"""

from __future__ import annotations

import calendar
import codecs
import html
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

import feedparser

from core.identity import canonical_link, entry_keys, entry_uid
from core.models import Item, cap_text
from watchers import fastparse

__all__ = ["ParseResult", "canonical_link", "parse_feed", "plain_text"]

log = logging.getLogger(__name__)
KNOWN_LANGS = ("ru", "en", "ko")
_SPACES = re.compile(r"\s+")
_BLOCK_TAGS = frozenset(
    [
        "p",
        "div",
        "br",
        "li",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "tr",
        "table",
        "blockquote",
        "section",
        "article",
    ]
)


@dataclass(frozen=True, slots=True)
class ParseResult:
    items: tuple[Item, ...]
    error: str | None = None
    skipped: int = 0  # entries that could not be normalised
    language: str | None = None  # the feed's own language tag, if it had one


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(value: str) -> str:
    """HTML → plain text: tags removed, entities decoded, paragraphs kept as newlines."""
    if "<" not in value and "&" not in value:
        return _collapse(value)
    parser = _TextExtractor()
    try:
        parser.feed(value)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # malformed markup: fall back to a blunt strip
        text = html.unescape(re.sub(r"<[^>]*>", " ", value))
    return _collapse(text)


def _collapse(text: str) -> str:
    if "\n" not in text and "\r" not in text:  # one paragraph (most titles): skip the split and join
        return _SPACES.sub(" ", text).strip()
    paragraphs = (_SPACES.sub(" ", p).strip() for p in text.replace("\r", "\n").split("\n"))
    return "\n".join(p for p in paragraphs if p)


def _text(value: str, detail: Any) -> str:
    """feedparser has decoded entities already; strip tags only where the content is (X)HTML."""
    kind = (detail or {}).get("type", "text/html") if isinstance(detail, dict) else "text/html"
    return plain_text(value) if "html" in kind else _collapse(value)


def _time(entry: Any) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        # dict.get bypasses feedparser's deprecated updated→published key mapping (and its warning)
        value = dict.get(entry, key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), UTC)
            except (OverflowError, ValueError, TypeError):
                continue
    return None


def _lang(tag: object) -> str | None:
    if isinstance(tag, str) and tag[:2].lower() in KNOWN_LANGS:
        return tag[:2].lower()
    return None


def _entry_to_item(
    entry: Any, feed_url: str, feed_name: str, lang: str | None, ignore_params: Sequence[str] = (), keys: bool = True
) -> Item | None:
    title = _text(entry.get("title") or "", entry.get("title_detail"))
    summary = _text(entry.get("summary") or "", entry.get("summary_detail"))
    if not summary and entry.get("content"):
        summary = _text(entry["content"][0].get("value", ""), entry["content"][0])
    title, summary = cap_text(title), cap_text(summary)
    if not (title or summary):
        return None
    raw_link = (entry.get("link") or "").strip()
    # identity: the one normalisation every entry goes through (core.identity decides what it means)
    guid = entry.get("id") or ""
    found = entry_keys(guid, raw_link, title, summary, ignore_params) if keys else None
    return Item(
        feed_url=feed_url,
        # provisional: the pipeline decides
        uid=(found.guid or found.link or "sha1:" + found.fingerprint)
        if found
        else entry_uid(guid, raw_link, title, summary, ignore_params),
        title=title,
        summary=summary,
        link=raw_link if raw_link.startswith(("http://", "https://")) else None,
        published=_time(entry),
        lang=lang or _lang(entry.get("language")),
        feed_name=feed_name,
        keys=found,
    )


_PROLOG_ENCODING = re.compile(rb"""^(\s*<\?xml[^>]*?\bencoding\s*=\s*["'])([A-Za-z0-9._:-]+)(["'])""")
_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_BOMS = (  # longest first: the UTF-32 LE mark begins like the UTF-16 LE one
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)
_TAGS = re.compile(rb"<[^>]*>")


def _codec(name: str | None) -> str | None:
    """The codec's canonical name, or None for no name or one Python does not know."""
    if not name:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _decodes(body: bytes, codec: str | None) -> bool:
    if codec is None:
        return False
    try:
        body.decode(codec)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _sniff_cyrillic(body: bytes) -> str | None:
    """windows-1251 or koi8-r for undeclared Russian text, else None.

    Russian text outside the markup is mostly non-ASCII letters, nearly all in 0xC0–0xFF; lowercase
    letters dominate, and they sit in 0xE0–0xFF in windows-1251 but in 0xC0–0xDF in koi8-r.
    """
    text = _TAGS.sub(b" ", body)

    def count(low: int, high: int) -> int:
        return len(text) - len(text.translate(None, bytes(range(low, high + 1))))

    non_ascii, letters, upper_half = count(0x80, 0xFF), count(0xC0, 0xFF), count(0xE0, 0xFF)
    latin = count(0x41, 0x5A) + count(0x61, 0x7A)
    if non_ascii < 8 or non_ascii < 0.3 * (non_ascii + latin) or letters < 0.8 * non_ascii:
        return None
    return "cp1251" if upper_half * 2 >= letters else "koi8-r"


def _reencode(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    """Decide the body's encoding where feedparser's RFC 3023 rules would garble it, and hand it on as
    UTF-8 (prolog and header saying so). Evidence, strongest first: the body is valid UTF-8; the XML
    prolog's encoding (servers often send a default charset that is wrong); the HTTP charset; a Cyrillic
    sniff when nothing declared decodes it. A byte-order mark beats them all (feedparser reads a UTF-16
    body served as text/xml as ASCII); pure ASCII and BOM-less UTF-16/32 are left alone."""
    if body.isascii():
        return body, content_type
    chosen = next((codec for bom, codec in _BOMS if body.startswith(bom)), None)
    if chosen is None:
        found = _PROLOG_ENCODING.match(body[:500])
        declared_xml = _codec(found.group(2).decode("ascii")) if found else None
        charset = _CHARSET.search(content_type or "")
        declared_http = _codec(charset.group(1)) if charset else None
        if any(c and c.startswith(("utf-16", "utf-32")) for c in (declared_xml, declared_http)):
            return body, content_type
        chosen = next(
            (c for c in ("utf-8", declared_xml, declared_http) if _decodes(body, c)),
            None,
        ) or _sniff_cyrillic(body)
        if chosen is None or chosen == declared_xml == declared_http:
            return body, content_type
    text = body.decode(chosen, errors="replace")
    utf8 = _PROLOG_ENCODING.sub(rb"\1utf-8\3", text.encode("utf-8"), count=1)
    media = (content_type or "").split(";")[0].strip()
    return utf8, (f"{media}; charset=utf-8" if media else None)


def parse_feed(
    body: bytes,
    *,
    feed_url: str,
    feed_name: str = "",
    lang: str | None = None,
    content_type: str | None = None,
    ignore_params: Sequence[str] = (),
    fast: bool = True,
    keys: bool = True,
) -> ParseResult:
    """Parse ``body`` (never a URL: feedparser must not fetch anything itself); ``ignore_params`` are the
    feed's own tracking parameters, dropped from its links like :data:`core.identity.TRACKING_PARAMS`.

    A well-formed RSS/Atom/RDF body goes through the lxml fast path (:mod:`watchers.fastparse`), which
    builds the same entry fields feedparser would; anything it declines, and everything when ``fast`` is
    False, goes through feedparser. Both meet in the same entry → Item function below. ``keys=False``
    leaves the Items' identity keys out (``Item.keys`` None; the uid is the same): for a caller that only
    matches, such as ``bot.py match``.
    """
    body, content_type = _reencode(body, content_type)
    parsed: Any = fastparse.parse(body, content_type) if fast else None
    if parsed is None:
        headers = {"content-type": content_type} if content_type else {}
        try:
            parsed = feedparser.parse(body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False)
        except Exception as exc:  # feedparser is robust, but a feed must never crash the poll
            log.warning("feed_parser_failed url=%s", feed_url, exc_info=True)
            return ParseResult((), error=f"parser failed: {type(exc).__name__}: {exc}"[:300])
    feed_lang = _lang(parsed["feed"].get("language")) if parsed.get("feed") else None
    entries = parsed.get("entries") or []
    if not entries:
        if parsed.get("bozo"):
            reason = parsed.get("bozo_exception")
            text = str(reason).splitlines()[0] if reason else "unreadable"
            if content_type and "html" in content_type.lower():
                text = f"got HTML ({content_type.split(';')[0].strip()})"
            elif parsed.get("version"):
                return ParseResult((), error=f"ill-formed feed with no entries: {text}"[:300])
            return ParseResult((), error=f"not a feed: {text}"[:300])
        if not parsed.get("version"):
            return ParseResult((), error="not a feed: no RSS/Atom/RDF document found")
        return ParseResult((), language=feed_lang)
    items: list[Item] = []
    skipped = 0
    for entry in entries:
        try:
            item = _entry_to_item(entry, feed_url, feed_name, lang or feed_lang, ignore_params, keys)
        except Exception:
            log.warning("feed_entry_failed url=%s", feed_url, exc_info=True)
            item = None
        if item is None:
            skipped += 1
        else:
            items.append(item)
    if not items:
        noun = "entry" if skipped == 1 else "entries"
        return ParseResult((), error=f"no usable entries: {skipped} {noun} without a title or summary", skipped=skipped)
    return ParseResult(tuple(items), skipped=skipped, language=feed_lang)

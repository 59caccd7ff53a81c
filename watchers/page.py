"""Web pages without feeds, read with selectors: each element matching ``item`` is one Item.

Defence- and foreign-ministry news pages, KCNA Watch and think-tank pages have no feed. A page source
names an ``item`` selector and, relative to each item, ``title`` and ``link`` (and optionally
``summary`` and ``date``), as CSS or, with ``xpath: true``, XPath (core/selectors.py compiles both).
Pure: bytes in, a :class:`PageResult` out; watchers/sources.py fetches and compares the match count
with the last poll's.

- Links are resolved against the page's URL, or its ``<base href>`` when it has one; the uid is the
  resolved link without its fragment (the identity module canonicalises links further).
- Scripts, styles and templates are dropped before selecting: a page "full of scripts" yields the same
  items as without them, and no script text reaches a title.
- A title selector that matches an element takes its text; a link selector that matches an element
  takes its ``href`` (or that of the first ``a[href]`` inside it); an XPath string result is taken as is.
- Dates are read leniently (:func:`parse_date`): ISO 8601, RFC 2822, "1 December 2026", "December 1,
  2026", Russian "1 декабря 2026", "01.12.2026", Korean "2026.12.01" and "2026년 12월 1일"; a date
  without a zone is taken as UTC (a page does not say its zone), an unreadable one leaves the item undated.
- An element without a title or a link is skipped and counted, never fatal.
"""

from __future__ import annotations

import email.utils
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urldefrag, urljoin

import lxml.html
from lxml import etree

from core.models import Item, cap_text
from core.selectors import Selector, compile_selector
from watchers.tme import element_text, split_title

_DROP = compile_selector("//script | //style | //noscript | //template", xpath=True)
_BASE = compile_selector("//base[@href]", xpath=True)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]+)""", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class PageSpec:
    """A page source's selectors, compiled once per poll from the JSON the store keeps."""

    item: str
    title: str
    link: str
    summary: str | None = None
    date: str | None = None
    xpath: bool = False

    @classmethod
    def from_json(cls, spec: str) -> PageSpec:
        data = json.loads(spec)
        return cls(
            item=data["item"],
            title=data["title"],
            link=data["link"],
            summary=data.get("summary"),
            date=data.get("date"),
            xpath=bool(data.get("xpath", False)),
        )


@dataclass(frozen=True, slots=True)
class PageResult:
    items: tuple[Item, ...]
    matched: int  # elements the item selector matched (the layout check compares this with the last poll)
    skipped: int = 0  # matched elements without a title or a link


# -- dates ------------------------------------------------------------------------------------------

_MONTHS = {
    **{
        name: i + 1
        for i, names in enumerate(
            [
                ("january", "jan", "января", "январь", "янв"),
                ("february", "feb", "февраля", "февраль", "фев"),
                ("march", "mar", "марта", "март", "мар"),
                ("april", "apr", "апреля", "апрель", "апр"),
                ("may", "мая", "май"),
                ("june", "jun", "июня", "июнь", "июн"),
                ("july", "jul", "июля", "июль", "июл"),
                ("august", "aug", "августа", "август", "авг"),
                ("september", "sep", "sept", "сентября", "сентябрь", "сен", "сент"),
                ("october", "oct", "октября", "октябрь", "окт"),
                ("november", "nov", "ноября", "ноябрь", "ноя"),
                ("december", "dec", "декабря", "декабрь", "дек"),
            ]
        )
        for name in names
    }
}
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?")
_TIME_OF_DAY = r"(?:[,\s]+(?:в\s+)?(\d{1,2}):(\d{2}))?"
_DAY_MONTH_YEAR = re.compile(r"(\d{1,2})\s+([^\W\d_]+)\.?,?\s+(\d{4})(?:\s*г\.?)?" + _TIME_OF_DAY)
_MONTH_DAY_YEAR = re.compile(r"([A-Za-z]+)\.?\s+(\d{1,2}),?\s+(\d{4})" + _TIME_OF_DAY)
_KOREAN = re.compile(r"(\d{4})\s*년\s*(\d{1,2})\s*월\s*(\d{1,2})\s*일" + _TIME_OF_DAY)
_YMD = re.compile(r"(\d{4})[./-](\d{1,2})[./-](\d{1,2})\.?" + _TIME_OF_DAY)
_DMY = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})" + _TIME_OF_DAY)


def _utc(year: int, month: int, day: int, hour: str | None, minute: str | None) -> datetime | None:
    try:
        return datetime(year, month, day, int(hour or 0), int(minute or 0), tzinfo=UTC)
    except ValueError:
        return None


def parse_date(text: str) -> datetime | None:
    """A UTC datetime from the date formats news pages use (see the module docstring), or None."""
    text = text.strip()
    if not text:
        return None
    iso = _ISO.search(text)
    if iso:
        try:
            when = datetime.fromisoformat(iso.group(0).replace(" ", "T", 1))
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
        except ValueError:
            pass
    if "," in text[:4] or re.match(r"\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}", text):
        try:
            when = email.utils.parsedate_to_datetime(text)
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
        except (TypeError, ValueError, IndexError):
            pass
    if found := _KOREAN.search(text):
        return _utc(int(found[1]), int(found[2]), int(found[3]), found[4], found[5])
    if found := _YMD.search(text):
        return _utc(int(found[1]), int(found[2]), int(found[3]), found[4], found[5])
    if found := _DMY.search(text):
        return _utc(int(found[3]), int(found[2]), int(found[1]), found[4], found[5])
    if (found := _DAY_MONTH_YEAR.search(text)) and (month := _MONTHS.get(found[2].lower())):
        return _utc(int(found[3]), month, int(found[1]), found[4], found[5])
    if (found := _MONTH_DAY_YEAR.search(text)) and (month := _MONTHS.get(found[1].lower())):
        return _utc(int(found[3]), month, int(found[2]), found[4], found[5])
    return None


# -- the page ---------------------------------------------------------------------------------------


def decode_html(body: bytes, content_type: str | None) -> str:
    """The page as text: the HTTP charset, else the page's <meta charset>, else UTF-8, else windows-1251
    (Russian ministry pages still serve it undeclared)."""
    http = _HTTP_CHARSET.search(content_type or "")
    meta = _META_CHARSET.search(body[:4096])
    declared = [http.group(1) if http else None, meta.group(1).decode("ascii") if meta else None]
    for codec in declared:
        if codec:
            try:
                return body.decode(codec)
            except (LookupError, UnicodeDecodeError):
                continue
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return body.decode("cp1251", errors="replace")


def _first_text(found: list[Any]) -> str:
    for node in found:
        text = element_text(node) if isinstance(node, etree._Element) else str(node).strip()
        if text:
            return text
    return ""


def _first_link(found: list[Any]) -> str:
    for node in found:
        if not isinstance(node, etree._Element):
            if str(node).strip():
                return str(node).strip()
            continue
        href = node.get("href")
        if not href:
            inner = node.xpath(".//a[@href]")
            href = inner[0].get("href") if inner else None
        if isinstance(href, str) and href.strip() and not href.strip().lower().startswith(("javascript:", "mailto:")):
            return href.strip()
    return ""


def _first_date(found: list[Any]) -> datetime | None:
    for node in found:
        candidates = (
            [node.get("datetime"), node.get("content"), node.get("title"), element_text(node)]
            if isinstance(node, etree._Element)
            else [str(node)]
        )
        for value in candidates:
            if value and (when := parse_date(value)):
                return when
    return None


def parse_page(
    body: bytes,
    spec: PageSpec,
    *,
    page_url: str,
    content_type: str | None = None,
    feed_name: str = "",
    lang: str | None = None,
) -> PageResult:
    """Items from one page; ValueError only for a selector that does not compile (config catches those)."""
    selectors: dict[str, Selector | None] = {
        key: compile_selector(value, xpath=spec.xpath) if value else None
        for key, value in (
            ("item", spec.item),
            ("title", spec.title),
            ("link", spec.link),
            ("summary", spec.summary),
            ("date", spec.date),
        )
    }
    text = decode_html(body, content_type)
    if not text.strip():
        return PageResult((), 0)
    try:
        doc = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):
        return PageResult((), 0)
    for junk in _DROP(doc):
        junk.drop_tree()
    bases = _BASE(doc)
    base = urljoin(page_url, bases[0].get("href", "").strip()) if bases else page_url
    item_selector, title_selector, link_selector = selectors["item"], selectors["title"], selectors["link"]
    assert item_selector and title_selector and link_selector
    elements = [e for e in item_selector(doc) if isinstance(e, etree._Element)]
    items: list[Item] = []
    skipped = 0
    for element in elements:
        title_text = _first_text(title_selector(element))
        href = _first_link(link_selector(element))
        if not title_text or not href:
            skipped += 1
            continue
        link = urldefrag(urljoin(base, href)).url
        title, rest = split_title(title_text.replace("\n", " "))
        summary_selector, date_selector = selectors["summary"], selectors["date"]
        summary = "\n".join(
            t for node in (summary_selector(element) if summary_selector else []) if (t := _first_text([node]))
        )
        items.append(
            Item(
                feed_url=page_url,
                uid=link[:1000],
                title=cap_text(title),
                summary=cap_text(summary or rest),
                link=link,
                published=_first_date(date_selector(element)) if date_selector else None,
                lang=lang,
                feed_name=feed_name,
            )
        )
    return PageResult(tuple(items), len(elements), skipped)

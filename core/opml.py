"""OPML feed lists: read one safely, write one. Pure: bytes in, values out; no store, no network.

Reading: outlines are flattened (categories are outlines holding outlines); an outline is a feed when it
has an ``xmlUrl`` and its ``type`` is ``rss``, ``atom`` or missing. Anything else that is not a category
becomes a problem line ("outline 7 (line 12): no xmlUrl") and the other outlines still count. A file that
is too big, not well-formed, unsafe (entity declarations, external references) or not OPML gives no feeds
and exactly one problem. The XML goes through defusedxml, so entity bombs and external entities are
refused before they expand.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

MAX_OPML_BYTES = 1_000_000
MAX_URL, MAX_NAME = 2000, 200  # longer URLs are refused; longer names are cut
FEED_TYPES = ("rss", "atom")
# Characters XML 1.0 cannot carry at all (escaping does not help): dropped when writing.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@dataclass(frozen=True, slots=True)
class OpmlFeed:
    url: str
    name: str
    lang: str | None = None
    outline: int = field(default=0, compare=False)  # 1-based position among the file's outlines
    line: int = field(default=0, compare=False)
    category: str | None = None  # OPML's category attribute ("telegram" for a channel's t.me/s/ preview)

    @property
    def where(self) -> str:
        return f"outline {self.outline} (line {self.line})"


@dataclass(frozen=True, slots=True)
class OpmlResult:
    feeds: list[OpmlFeed]
    problems: list[str]


@dataclass(slots=True)
class _Outline:
    number: int
    line: int
    attrib: dict[str, str]
    children: int = 0


class _Collector:
    """An ElementTree parser target that keeps only what OPML needs, with line numbers."""

    def __init__(self) -> None:
        self.parser: Any = None  # the expat parser, for line numbers; set once the XMLParser exists
        self.path: list[str] = []
        self.open: list[_Outline] = []
        self.closed: list[_Outline] = []
        self.root: str | None = None
        self.body = False
        self.count = 0

    def start(self, tag: str, attrib: dict[str, str]) -> None:
        name = tag.rpartition("}")[2]
        if self.root is None:
            self.root = name
        if name == "body" and self.path == ["opml"]:
            self.body = True
        self.path.append(name)
        if name != "outline" or "body" not in self.path:
            return
        self.count += 1
        if self.open:
            self.open[-1].children += 1
        line = int(self.parser.CurrentLineNumber) if self.parser is not None else 0
        self.open.append(_Outline(self.count, line, {k.rpartition("}")[2].lower(): v for k, v in attrib.items()}))

    def end(self, tag: str) -> None:
        self.path.pop()
        if tag.rpartition("}")[2] == "outline" and self.open:
            self.closed.append(self.open.pop())

    def data(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _lang(value: str | None) -> str | None:
    """``ru-RU`` → ``ru``; empty → None."""
    code = (value or "").strip().lower().replace("_", "-").split("-")[0]
    return code or None


def _feed(outline: _Outline) -> OpmlFeed | str:
    where = f"outline {outline.number} (line {outline.line})"
    url = (outline.attrib.get("xmlurl") or "").strip()
    kind = (outline.attrib.get("type") or "").strip().lower()
    if not url:
        if outline.children:
            return ""  # a category: its outlines speak for themselves
        return f"{where}: no xmlUrl"
    if kind and kind not in FEED_TYPES:
        return f"{where}: type {kind[:40]!r} is not a feed (rss or atom)"
    if len(url) > MAX_URL:
        return f"{where}: xmlUrl is longer than {MAX_URL} characters"
    name = " ".join((outline.attrib.get("text") or outline.attrib.get("title") or "").split())[:MAX_NAME]
    name = name or urlsplit(url).hostname or url
    category = (outline.attrib.get("category") or "").strip()[:MAX_NAME] or None
    return OpmlFeed(url, name, _lang(outline.attrib.get("language")), outline.number, outline.line, category)


def parse_opml(data: bytes) -> OpmlResult:
    """The feeds of an OPML document, in document order, and a problem line per unusable outline."""
    if len(data) > MAX_OPML_BYTES:
        return OpmlResult([], [f"the file is over {MAX_OPML_BYTES // 1_000_000} MB ({len(data)} bytes)"])
    if not data.strip():
        return OpmlResult([], ["the file is empty"])
    collector = _Collector()
    parser = DefusedXMLParser(target=collector, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    collector.parser = parser.parser
    try:
        parser.feed(data)
        parser.close()
    except DefusedXmlException as exc:
        refused = "unsafe XML refused: entity declarations and external references are not allowed"
        return OpmlResult([], [f"{refused} ({type(exc).__name__})"])
    except ET.ParseError as exc:
        line, column = exc.position
        return OpmlResult([], [f"not well-formed XML: {_reason(exc)} (line {line}, column {column + 1})"])
    if collector.root != "opml" or not collector.body:
        found = f"<{collector.root}>" if collector.root else "no element"
        return OpmlResult([], [f"not an OPML document: expected <opml> with a <body>, found {found}"])
    feeds: list[OpmlFeed] = []
    problems: list[str] = []
    for outline in sorted(collector.closed, key=lambda o: o.number):
        result = _feed(outline)
        if isinstance(result, OpmlFeed):
            feeds.append(result)
        elif result:
            problems.append(result)
    return OpmlResult(feeds, problems)


def _reason(exc: ET.ParseError) -> str:
    return str(exc).split(":")[0]


def render_opml(feeds: Sequence[OpmlFeed], title: str, created: datetime | None = None) -> bytes:
    """An OPML 2.0 document (UTF-8) listing ``feeds`` as rss outlines; names and URLs are escaped."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = _NOT_XML.sub("", title)
    if created is not None:
        ET.SubElement(head, "dateCreated").text = format_datetime(created)
    body = ET.SubElement(root, "body")
    for feed in feeds:
        name = _NOT_XML.sub("", feed.name)
        attrib = {"type": "rss", "text": name, "title": name, "xmlUrl": _NOT_XML.sub("", feed.url)}
        if feed.lang:
            attrib["language"] = feed.lang
        if feed.category:
            attrib["category"] = feed.category
        ET.SubElement(body, "outline", attrib)
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="UTF-8", xml_declaration=True)) + b"\n"

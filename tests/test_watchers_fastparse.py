"""The lxml fast path against feedparser, the behaviour of record.

Over feedparser's own test corpus (the sdist the corpus suite downloads) and every fixture: for every file
the fast path accepts, both paths give the same Items (uid, title, summary, link, published, language) and
the same result otherwise; the counts are printed. Then named cases: documents the fast path must leave
to feedparser, and hostile ones it must not expand.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from test_watchers_corpus import CONTENT_TYPE, corpus

from watchers import fastparse
from watchers.parse import ParseResult, parse_feed

REPO = Path(__file__).resolve().parents[1]
FIXTURES = sorted([*(REPO / "tests" / "fixtures" / "feeds").iterdir(), *(REPO / "examples" / "feeds").iterdir()])
__all__ = ["corpus"]  # the corpus suite's fixture, shared


def _both(body: bytes, content_type: str | None, url: str) -> tuple[bool, ParseResult, ParseResult]:
    accepted = fastparse.parse(*_reencoded(body, content_type)) is not None
    fast = parse_feed(body, feed_url=url, content_type=content_type)
    slow = parse_feed(body, feed_url=url, content_type=content_type, fast=False)
    return accepted, fast, slow


def _reencoded(body: bytes, content_type: str | None) -> tuple[bytes, str | None]:
    from watchers.parse import _reencode

    return _reencode(body, content_type)


def _differences(paths: list[Path], figure: Callable[[str], None], label: str) -> list[str]:
    accepted = routed = items = 0
    problems: list[str] = []
    started = time.perf_counter()
    for path in paths:
        body = path.read_bytes()
        declared = CONTENT_TYPE.search(body)
        content_type = declared.group(1).decode("latin-1") if declared else None
        took, fast, slow = _both(body, content_type, f"https://corpus.example/{path.name}")
        if not took:
            routed += 1
            continue
        accepted += 1
        items += len(fast.items)
        if fast != slow:
            problems.append(f"{path.name}:\n  fast {fast}\n  slow {slow}")
    figure(
        f"fast parse path, {label}: files={len(paths)} accepted_by_fast_path={accepted} "
        f"routed_to_feedparser={routed} items={items} differences={len(problems)} "
        f"seconds={time.perf_counter() - started:.1f}"
    )
    return problems


@pytest.mark.slow
def test_fast_path_gives_feedparsers_items_over_its_own_corpus(
    corpus: list[Path], figure: Callable[[str], None], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="watchers.fastparse"):
        problems = _differences(corpus, figure, "feedparser corpus")
    assert not problems, f"{len(problems)} difference(s):\n" + "\n".join(problems[:10])
    unforeseen = [r.getMessage() for r in caplog.records if r.name == "watchers.fastparse"]
    assert not unforeseen, f"the fast path raised where it should have declined: {unforeseen[:3]}"


def test_fast_path_gives_feedparsers_items_for_every_fixture(figure: Callable[[str], None]) -> None:
    problems = _differences(FIXTURES, figure, "fixtures and examples")
    assert not problems, "\n".join(problems)
    accepted = [p.name for p in FIXTURES if fastparse.parse(*_reencoded(p.read_bytes(), None)) is not None]
    assert {"atom.xml", "rdf.xml", "rss_entities.xml", "ru-politics.xml"} <= set(accepted)


RSS = (
    '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>c</title>{channel}'
    "<item>{item}</item></channel></rss>"
)
PLAIN_ITEM = "<title>Kim meets Putin</title><link>https://a.example/1</link><guid>g1</guid>"


@pytest.mark.parametrize(
    ("case", "body"),
    [
        ("ill-formed", RSS.format(channel="", item=PLAIN_ITEM + "<description>a & b</description>")),
        ("doctype with entities", '<!DOCTYPE rss [<!ENTITY x "boom">]>' + RSS.format(channel="", item=PLAIN_ITEM)),
        (
            "media:title beside title",
            RSS.format(
                channel="", item=PLAIN_ITEM + '<media:title xmlns:media="http://search.yahoo.com/mrss/">m</media:title>'
            ),
        ),
        (
            "itunes:summary beside description",
            RSS.format(
                channel="",
                item=PLAIN_ITEM + "<description>d</description>"
                '<itunes:summary xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd">s</itunes:summary>',
            ),
        ),
        ("two titles", RSS.format(channel="", item=PLAIN_ITEM + "<title>again</title>")),
        ("markup inside a title", RSS.format(channel="", item="<title>a <b>b</b></title><guid>g</guid>")),
        ("xml:base", RSS.format(channel="", item=PLAIN_ITEM).replace("<item>", '<item xml:base="https://b.example/">')),
        ("unknown root", "<?xml version='1.0'?><feed><entry><title>t</title></entry></feed>"),
        ("no entries", RSS.format(channel="", item="").replace("<item></item>", "")),
        (
            "xhtml content",
            '<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>i</id><title>t</title>'
            '<content type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div></content></entry></feed>',
        ),
        (
            "latin-1 body",
            RSS.format(channel="", item=PLAIN_ITEM)
            .replace("utf-8", "iso-8859-1")
            .replace("Putin", "Put\xefn")
            .encode("latin-1")
            .decode("latin-1"),
        ),
    ],
)
def test_documents_the_fast_path_leaves_to_feedparser(case: str, body: str) -> None:
    raw = body.encode("latin-1") if case == "latin-1 body" else body.encode()
    assert fastparse.parse(raw, "application/rss+xml") is None, case
    # and feedparser still gives what it always gave
    assert parse_feed(raw, feed_url="https://x.example/") == parse_feed(raw, feed_url="https://x.example/", fast=False)


@pytest.mark.parametrize(
    ("case", "item", "expected"),
    [
        (
            "guid is the link",
            "<title>t</title><guid>https://a.example/p?utm_source=x</guid>",
            ("https://a.example/p?utm_source=x", "https://a.example/p?utm_source=x"),
        ),
        ("guid not a permalink", '<title>t</title><guid isPermaLink="false">abc</guid>', ("abc", None)),
        (
            "link without guid",
            "<title>t</title><link>https://A.example/x#frag</link>",
            ("https://a.example/x", "https://A.example/x#frag"),
        ),
        (
            "content:encoded stands in for a missing description",
            "<title>t</title><guid>g</guid>"
            '<content:encoded xmlns:content="http://purl.org/rss/1.0/modules/content/">&lt;p&gt;body&lt;/p&gt;'
            "</content:encoded>",
            ("g", None),
        ),
    ],
)
def test_accepted_documents_keep_identity_and_links(case: str, item: str, expected: tuple[str, str | None]) -> None:
    body = RSS.format(channel="", item=item).encode()
    assert fastparse.parse(body, None) is not None, case
    fast = parse_feed(body, feed_url="https://x.example/")
    assert fast == parse_feed(body, feed_url="https://x.example/", fast=False), case
    assert (fast.items[0].uid, fast.items[0].link) == expected


def test_entity_expansion_and_external_entities_are_never_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 9))
    bodies = [
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "ha">{laughs}]>'
        '<rss version="2.0"><channel><item><title>&l8;</title></item></channel></rss>',
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>'
        '<rss version="2.0"><channel><item><title>&x;</title><guid>g</guid></item></channel></rss>',
    ]
    for body in bodies:
        assert fastparse.parse(body.encode(), None) is None
        result = parse_feed(body.encode(), feed_url="https://x.example/")
        assert all("TOP-SECRET" not in i.title and len(i.title) < 10_000 for i in result.items)

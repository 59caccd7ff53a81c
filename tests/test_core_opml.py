"""OPML reading and writing: what a user's exported feed list turns into, and what is refused."""

from __future__ import annotations

import pytest

from core.opml import MAX_OPML_BYTES, OpmlFeed, parse_opml, render_opml

NESTED = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My feeds</title></head>
  <body>
    <outline text="Russia">
      <outline text="TASS &amp; RIA" type="rss" xmlUrl="https://tass.ru/rss/v2.xml" language="ru-RU"/>
      <outline text="Defence">
        <outline title="Mil" type="atom" xmlUrl="https://mil.example/atom"/>
      </outline>
    </outline>
    <outline text="No type" xmlUrl="https://en.yna.co.kr/RSS/news.xml"/>
    <outline text="Lonely, no URL"/>
    <outline text="A web page" type="link" url="https://example.com/" xmlUrl="https://example.com/"/>
  </body>
</opml>
"""


def test_nested_outlines_are_flattened_in_file_order() -> None:
    result = parse_opml(NESTED)
    assert result.feeds == [
        OpmlFeed("https://tass.ru/rss/v2.xml", "TASS & RIA", "ru"),
        OpmlFeed("https://mil.example/atom", "Mil", None),
        OpmlFeed("https://en.yna.co.kr/RSS/news.xml", "No type", None),
    ]
    assert [(f.outline, f.line) for f in result.feeds] == [(2, 6), (4, 8), (5, 11)]


def test_unusable_outlines_are_named_with_number_and_line() -> None:
    assert parse_opml(NESTED).problems == [
        "outline 6 (line 12): no xmlUrl",
        "outline 7 (line 13): type 'link' is not a feed (rss or atom)",
    ]


def test_a_feed_without_a_name_is_named_after_its_host() -> None:
    doc = b'<opml version="1.0"><body><outline xmlUrl="https://news.example.org/rss"/></body></opml>'
    assert parse_opml(doc).feeds == [OpmlFeed("https://news.example.org/rss", "news.example.org", None)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b"<opml><body><outline", "not well-formed XML: unclosed token (line 1", id="truncated"),
        pytest.param(b"hello, world", "not well-formed XML: syntax error (line 1, column 1)", id="plain-text"),
        pytest.param(b"  \n", "the file is empty", id="empty"),
        pytest.param(
            b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>',
            "not an OPML document: expected <opml> with a <body>, found <rss>",
            id="an-rss-feed",
        ),
        pytest.param(b"<opml><head/></opml>", "not an OPML document", id="opml-without-body"),
    ],
)
def test_a_file_that_is_not_opml_gives_one_clear_error(data: bytes, expected: str) -> None:
    result = parse_opml(data)
    assert result.feeds == []
    assert len(result.problems) == 1 and result.problems[0].startswith(expected)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE opml [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<opml version="2.0"><body><outline text="&lol3;" xmlUrl="https://a.example/rss"/></body></opml>
"""
EXTERNAL = b"""<?xml version="1.0"?>
<!DOCTYPE opml [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<opml version="2.0"><body><outline text="&secret;" xmlUrl="https://a.example/rss"/></body></opml>
"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, EXTERNAL], ids=["entity-bomb", "external-entity"])
def test_entity_declarations_are_refused(data: bytes) -> None:
    result = parse_opml(data)
    assert result.feeds == []
    assert len(result.problems) == 1 and result.problems[0].startswith("unsafe XML refused")


def test_a_file_over_the_size_cap_is_refused_unread() -> None:
    outline = b'<outline xmlUrl="https://a.example/rss"/>'
    data = b"<opml><body>" + outline * (MAX_OPML_BYTES // len(outline) + 1) + b"</body></opml>"
    assert parse_opml(data).problems == [f"the file is over 1 MB ({len(data)} bytes)"]


def test_render_then_parse_gives_the_same_feeds() -> None:
    feeds = [
        OpmlFeed("https://tass.ru/rss/v2.xml", "ТАСС", "ru"),
        OpmlFeed("https://en.yna.co.kr/RSS/news.xml?a=1&b=2", "Yonhap <EN> & \"co\" 'x'", "en"),
        OpmlFeed("https://www.nknews.org/feed/", "NK News", None),
    ]
    data = render_opml(feeds, "Feeds & more")
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    result = parse_opml(data)
    assert result.feeds == feeds and result.problems == []


def test_render_escapes_names_and_writes_language_only_when_known() -> None:
    data = render_opml(
        [OpmlFeed("https://a.example/?x=1&y=2", 'A <b>"bold"</b>\x01', "ko"), OpmlFeed("https://b.example/", "B")],
        "T",
    ).decode("utf-8")
    assert 'text="A &lt;b&gt;&quot;bold&quot;&lt;/b&gt;"' in data
    assert 'xmlUrl="https://a.example/?x=1&amp;y=2"' in data
    assert data.count("language=") == 1 and 'language="ko"' in data
    assert "<b>" not in data


def test_overlong_urls_are_refused_and_overlong_names_cut() -> None:
    long_url = "https://a.example/" + "x" * 2000
    doc = f'<opml><body><outline xmlUrl="{long_url}"/><outline text="{"n" * 500}" xmlUrl="https://b.example/"/></body></opml>'
    result = parse_opml(doc.encode())
    assert result.problems == ["outline 1 (line 1): xmlUrl is longer than 2000 characters"]
    assert [len(f.name) for f in result.feeds] == [200]

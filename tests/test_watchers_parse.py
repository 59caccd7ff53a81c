"""Parsing and normalising feeds: what an analyst sees in an alert comes from here."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchers.parse import canonical_link, parse_feed, plain_text

FIXTURES = Path(__file__).parent / "fixtures" / "feeds"


def parse(name: str, **kw: str) -> tuple:
    result = parse_feed((FIXTURES / name).read_bytes(), feed_url=f"https://feeds.example/{name}", **kw)
    return result.items, result.error


def test_rss_entries_become_plain_text_items_with_utc_times() -> None:
    items, error = parse("rss_entities.xml")
    assert error is None
    first = items[0]
    assert first.title == "Kim & Putin sign <defence> pact"
    assert first.summary == "North Korea's leader met Russia’s president.\nSecond paragraph."
    assert "alert(1)" not in first.summary
    assert first.published == datetime(2024, 11, 5, 3, 0, tzinfo=UTC)
    assert first.lang == "en"  # from the feed's <language>en-us</language>


def test_stable_uid_guid_then_canonical_link_then_hash() -> None:
    items, _ = parse("rss_entities.xml")
    again, _ = parse("rss_entities.xml")
    assert [i.uid for i in items] == [i.uid for i in again]
    assert items[0].uid == "https://fixture.example/a?id=7"  # no guid: canonical link, utm_ and #frag gone
    assert items[1].uid.startswith("sha1:")  # neither guid nor link
    assert items[2].uid == "guid-3"
    assert items[2].published is None  # "not a date" is dropped, not fatal


@pytest.mark.parametrize(
    ("name", "title", "lang"),
    [
        ("atom.xml", "북한군, 러시아 파병", "ko"),
        ("rdf.xml", "RDF item", None),
        ("rss_cp1251.xml", "Пхеньян и Москва", None),
        ("bozo_usable.xml", "Unclosed entity & stray ampersand", None),
    ],
)
def test_formats_and_charsets(name: str, title: str, lang: str | None) -> None:
    items, error = parse(name)
    assert error is None
    assert items[0].title == title
    assert items[0].lang == lang


def test_configured_language_wins_over_feed_tag() -> None:
    items, _ = parse("rss_entities.xml", lang="ru")
    assert items[0].lang == "ru"


def test_atom_content_used_when_no_summary() -> None:
    items, _ = parse("atom.xml")
    assert items[0].summary == "국정원은 북한군이 러시아에 파병됐다고 밝혔다."
    assert items[0].published == datetime(2024, 11, 4, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        (b"<html><head><title>x</title></head><body><p>Not a feed</p></body></html>", "text/html", "not a feed"),
        (b"", None, "not a feed"),
        (b"\x00\x01garbage", None, "not a feed"),
    ],
)
def test_not_a_feed_is_a_clear_per_feed_error(body: bytes, content_type: str | None, fragment: str) -> None:
    result = parse_feed(body, feed_url="https://x.example/", content_type=content_type)
    assert result.items == ()
    assert result.error and fragment in result.error


def test_well_formed_empty_feed_is_not_an_error() -> None:
    body = b'<?xml version="1.0"?><rss version="2.0"><channel><title>Empty</title></channel></rss>'
    result = parse_feed(body, feed_url="https://x.example/")
    assert result.items == () and result.error is None


def test_plain_text_and_canonical_link() -> None:
    assert plain_text("a&amp;b <i>c</i>\n\n  d") == "a&b c\nd"
    assert canonical_link("HTTPS://News.Example/x?utm_medium=a&q=1#frag") == "https://news.example/x?q=1"


def test_a_feed_whose_entries_all_lack_text_is_a_per_feed_error() -> None:
    body = b'<rss version="2.0"><channel><item><link>https://x.example/1</link></item><item><guid>2</guid></item></channel></rss>'
    result = parse_feed(body, feed_url="https://x.example/")
    assert (result.items, result.skipped) == ((), 2)
    assert result.error == "no usable entries: 2 entries without a title or summary"


def test_an_ill_formed_feed_without_entries_is_named_so() -> None:
    result = parse_feed(b"<rss><channel><title>a &nbsp; b</title></channel></rss>", feed_url="https://x.example/")
    assert result.error and result.error.startswith("ill-formed feed with no entries: ")


@pytest.mark.parametrize(
    ("encoding", "prolog", "content_type"),
    [
        ("windows-1251", True, "application/rss+xml; charset=iso-8859-1"),  # the prolog beats a wrong header
        ("utf-8", False, "text/xml; charset=windows-1251"),  # valid UTF-8 beats a wrong header
        ("windows-1251", False, "application/rss+xml; charset=utf-8"),  # declared UTF-8 does not decode: sniffed
        ("koi8-r", False, None),  # nothing declared: sniffed
        ("utf-16", True, "text/xml"),  # a BOM beats text/xml's US-ASCII default
    ],
)
def test_cyrillic_decodes_right_despite_wrong_or_missing_charsets(
    encoding: str, prolog: bool, content_type: str | None
) -> None:
    title = "Пхеньян и Москва обсудили поставки снарядов"
    declaration = f'<?xml version="1.0" encoding="{encoding}"?>' if prolog else '<?xml version="1.0"?>'
    body = f'{declaration}<rss version="2.0"><channel><item><title>{title}</title></item></channel></rss>'
    result = parse_feed(body.encode(encoding), feed_url="https://x.example/", content_type=content_type)
    assert [i.title for i in result.items] == [title]


def test_undeclared_latin1_is_not_mistaken_for_cyrillic() -> None:
    title = "Pyongyang et Moscou : coopération militaire élargie, déclarations très fermes"
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><item><title>{title}</title></item></channel></rss>'
    result = parse_feed(body.encode("latin-1"), feed_url="https://x.example/", content_type="text/xml")
    assert [i.title for i in result.items] == [title]


def test_items_parsed_without_identity_keys_are_the_same_items_with_the_same_uids() -> None:
    """``keys=False`` (bot.py match) leaves the keys out and changes nothing else: every fixture feed, both parsers."""
    from dataclasses import replace

    compared = 0
    for path in [*sorted(FIXTURES.iterdir()), *sorted((FIXTURES.parents[2] / "examples" / "feeds").iterdir())]:
        for fast in (True, False):
            full = parse_feed(path.read_bytes(), feed_url="https://feeds.example/f", fast=fast)
            bare = parse_feed(path.read_bytes(), feed_url="https://feeds.example/f", fast=fast, keys=False)
            assert bare.error == full.error and bare.skipped == full.skipped
            assert all(i.keys is None for i in bare.items)
            assert bare.items == tuple(replace(i, keys=None) for i in full.items), path.name
            compared += len(full.items)
    assert compared > 30

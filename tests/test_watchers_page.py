"""watchers/page.py: news pages without feeds (ru/en/ko fixtures) read with CSS or XPath selectors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchers.page import PageSpec, decode_html, parse_date, parse_page

FIXTURES = Path(__file__).parent / "fixtures" / "pages"
RU = PageSpec(item="div.newsitem", title="a.title", link="a.title", summary="p.lead", date=".date")
EN = PageSpec(item="article.card", title="h2", link="h2 a", summary=".excerpt", date="time, .when")
KO = PageSpec(
    item="//ul[@class='board_list']/li",
    title=".//strong[@class='tit']",
    link="string(./a/@href)",
    summary=".//span[@class='txt']",
    date=".//span[@class='date']",
    xpath=True,
)


def read(name: str, spec: PageSpec, url: str, content_type: str | None = None):  # type: ignore[no-untyped-def]
    return parse_page((FIXTURES / f"{name}.html").read_bytes(), spec, page_url=url, content_type=content_type)


def test_russian_ministry_page_in_windows_1251_declared_by_meta() -> None:
    result = read("mil_ru", RU, "https://mil.example.ru/news/list.htm")
    assert (result.matched, result.skipped) == (4, 1)  # the item without title or link is skipped
    first = result.items[0]
    assert first.title.startswith("Делегация Минобороны России провела переговоры с руководством")
    assert first.summary.startswith("Стороны обсудили ход выполнения Договора")
    assert first.link == "https://mil.example.ru/news/more.htm?id=12539871@egNews"
    assert first.uid == first.link
    assert first.published == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert all("Скрипт" not in i.title for i in result.items), "document.write in a script is not an item"


def test_english_page_links_resolve_against_base_href_and_fragments_go() -> None:
    result = read("think_tank_en", EN, "https://kdr.example.org/analysis")
    assert [i.link for i in result.items] == [
        "https://kdr.example.org/analysis/2026/12/pyongyang-moscow-shells",
        "https://kdr.example.org/briefs/kpa-in-kursk",
        "https://other.example.net/podcast/41",
    ]
    assert [i.published for i in result.items] == [
        datetime(2026, 12, 1, 7, 0, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 11, 28, tzinfo=UTC),
    ]
    assert "trackImpression" not in result.items[0].summary


def test_without_base_href_links_resolve_against_the_page_url() -> None:
    result = read("kcna_ko", KO, "https://mnd.example.kr/news/list.do?page=1")
    assert result.items[0].link == "https://mnd.example.kr/news/view.do?seq=88101"


def test_korean_page_with_xpath_selectors_and_both_korean_date_forms() -> None:
    result = read("kcna_ko", KO, "https://mnd.example.kr/news/list.do")
    assert [i.title for i in result.items][:2] == [
        "북한군, 러시아 쿠르스크 지역에 추가 병력 파견 정황",
        "북러 군사협력 심화…정찰위성 기술 이전 우려",
    ]
    assert [i.published for i in result.items] == [
        datetime(2026, 12, 1, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
        datetime(2026, 11, 29, 14, 20, tzinfo=UTC),
    ]
    assert result.items[2].summary == ""


def test_the_same_page_in_css_and_xpath_gives_the_same_items() -> None:
    css = PageSpec(item="ul.board_list > li", title="strong.tit", link="a", summary="span.txt", date="span.date")
    url = "https://mnd.example.kr/news/list.do"
    assert read("kcna_ko", css, url).items == read("kcna_ko", KO, url).items


def test_a_changed_layout_matches_nothing() -> None:
    assert read("mil_ru_changed", RU, "https://mil.example.ru/news/").matched == 0


DATES = {
    "ISO with zone": ("2026-12-01T09:30:00+03:00", datetime(2026, 12, 1, 6, 30, tzinfo=UTC)),
    "ISO Z": ("2026-12-01T07:00:00Z", datetime(2026, 12, 1, 7, tzinfo=UTC)),
    "ISO date only": ("2026-12-01", datetime(2026, 12, 1, tzinfo=UTC)),
    "RFC 2822": ("Tue, 01 Dec 2026 09:30:00 +0900", datetime(2026, 12, 1, 0, 30, tzinfo=UTC)),
    "English day month year": ("1 December 2026", datetime(2026, 12, 1, tzinfo=UTC)),
    "English month day, year": ("December 1, 2026", datetime(2026, 12, 1, tzinfo=UTC)),
    "English abbreviated": ("Dec. 1, 2026 14:05", datetime(2026, 12, 1, 14, 5, tzinfo=UTC)),
    "Russian genitive": ("1 декабря 2026", datetime(2026, 12, 1, tzinfo=UTC)),
    "Russian with г. and time": ("30 ноября 2026 г., 18:05", datetime(2026, 11, 30, 18, 5, tzinfo=UTC)),
    "Russian numeric": ("01.12.2026", datetime(2026, 12, 1, tzinfo=UTC)),
    "Korean dotted": ("2026.12.01", datetime(2026, 12, 1, tzinfo=UTC)),
    "Korean words": ("2026년 12월 1일", datetime(2026, 12, 1, tzinfo=UTC)),
    "with words around": ("Опубликовано: 1 декабря 2026 в 10:15", datetime(2026, 12, 1, 10, 15, tzinfo=UTC)),
    "not a date": ("вчера", None),
    "impossible day": ("31.02.2026", None),
    "empty": ("", None),
}


@pytest.mark.parametrize("case", list(DATES.values()), ids=list(DATES))
def test_dates_are_read_leniently(case: tuple[str, datetime | None]) -> None:
    text, expected = case
    assert parse_date(text) == expected


def test_charset_from_http_beats_meta_and_undeclared_cyrillic_is_read() -> None:
    body = "<html><head><meta charset='iso-8859-1'></head><body>КНДР</body></html>".encode("cp1251")
    assert "КНДР" in decode_html(body, "text/html; charset=windows-1251")
    assert "КНДР" in decode_html("<p>КНДР</p>".encode("cp1251"), None)
    assert "КНДР" in decode_html("<p>КНДР</p>".encode(), "text/html")


@pytest.mark.parametrize("body", [b"", b"\x00\x01", b"<html></html>", b"not html at all"])
def test_garbage_matches_nothing_and_raises_nothing(body: bytes) -> None:
    assert parse_page(body, RU, page_url="https://x.example/").matched == 0

"""Telegram HTML: escaped, valid, linked, and never over 4096 visible characters."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from core.models import Hit, Item, Match
from delivery.digest import split_blocks
from delivery.render import render_alert, shorten, strip_html, visible_length
from tgemu.server import parse_html

MATCH = Match(
    "dprk_russia_military",
    "instant",
    (Hit("DPRK", "title", 0, 4, "КНДР"), Hit("RUSSIA", "title", 10, 20, "российских")),
)


def item(title: str, link: str | None = "https://news.example/a", summary: str = "s") -> Item:
    return Item(
        "https://news.example/rss",
        "1",
        title,
        summary,
        link,
        datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        "ru",
        "News & <Co>",
    )


@pytest.mark.parametrize(
    ("title", "link", "must_not_contain"),
    [
        ("<script>alert(1)</script>", "https://x.example/", "<script>"),
        ("<b>fake bold</b> & co", "https://x.example/", "<b>fake"),
        ("title", "javascript:alert(1)", "javascript:"),
        ('quote " in link', 'https://x.example/?q="><b>x</b>', '"><b>'),
    ],
)
def test_hostile_feed_text_is_escaped_and_valid(title: str, link: str, must_not_contain: str) -> None:
    html = render_alert(item(title, link, summary="<img src=x onerror=alert(1)> & more"), [MATCH])
    assert must_not_contain not in html
    parse_html(html)  # Telegram would accept it: raises if not


def test_alert_shows_title_source_time_and_why() -> None:
    html = render_alert(item("КНДР и Россия"), [MATCH])
    visible = strip_html(html)
    assert visible.splitlines()[0] == "🚨 КНДР и Россия"
    assert "News & <Co> · 2026-01-02 03:04 UTC" in visible
    assert "dprk_russia_military — DPRK: «КНДР» · RUSSIA: «российских»" in visible
    assert '<a href="https://news.example/a">' in html


def test_alert_why_line_shows_the_relevance_score() -> None:
    from dataclasses import replace

    scored = replace(MATCH, score=0.873)
    visible = strip_html(render_alert(item("КНДР и Россия"), [scored]))
    assert "RUSSIA: «российских» · relevance 0.87" in visible
    assert "relevance" not in strip_html(render_alert(item("КНДР и Россия"), [MATCH]))  # no model: no figure


def test_alert_names_other_rules_and_fits_even_with_huge_fields() -> None:
    other = Match("context", "digest", MATCH.hits)
    html = render_alert(item("T" * 10_000, summary="S " * 10_000), [other, MATCH])
    assert visible_length(html) <= 4096
    assert "also: context" in strip_html(html)
    parse_html(html)


def test_shorten_cuts_on_a_word() -> None:
    assert shorten("one two three four", 12) == "one two…"
    assert shorten("short", 10) == "short"


def test_split_never_exceeds_the_limit_nor_breaks_tags() -> None:
    rng = random.Random(3)
    blocks = [f"<b>{'слово ' * rng.randint(1, 200)}</b> <i>{i} &amp; more</i>" for i in range(300)]
    chunks = split_blocks(blocks)
    assert len(chunks) > 1
    for chunk in chunks:
        assert 0 < visible_length(chunk) <= 4096
        parse_html(chunk)
    assert "\n\n".join(chunks).count("<b>") == 300, "nothing lost, nothing duplicated"


LEAD = "The statement was read on television and repeated on the radio in the evening. " * 12  # ~950 chars


def _summary_match(summary: str, needle: str) -> Match:
    start = summary.index(needle)
    return Match("tie", "instant", (Hit("DPRK", "summary", start, start + len(needle), needle),))


@pytest.mark.parametrize(
    ("name", "summary", "needle", "shown", "starts_with"),
    [
        (
            "hit near the start: the start",
            "North Korean troops arrived. " + LEAD,
            "North Korean",
            "troops arrived",
            "North",
        ),
        (
            "hit deep in an article: around it",
            LEAD + "Then North Korean troops arrived in Kursk.",
            "North Korean",
            "North Korean troops arrived in Kursk",
            "…",
        ),
        ("hit only in the title: the start", LEAD + "Then North Korean troops arrived.", None, "The statement", "The"),
    ],
)
def test_alert_excerpt_quotes_the_summary_around_its_hits(
    name: str, summary: str, needle: str | None, shown: str, starts_with: str
) -> None:
    matches = [_summary_match(summary, needle)] if needle else [MATCH]
    visible = strip_html(render_alert(item("Title", summary=summary), matches))
    excerpt = visible.splitlines()[2]
    assert shown in excerpt
    assert excerpt.startswith(starts_with)
    assert len(excerpt) <= 600


def test_alert_source_line_shows_the_feeds_labels() -> None:
    item = Item("https://tass.example/rss", "1", "КНДР и Россия", "", None, None, "ru", "ТАСС", labels=("state-media",))
    match = Match("r", "instant", (Hit("DPRK", "title", 0, 4, "КНДР"),))
    assert strip_html(render_alert(item, [match])).splitlines()[1] == "ТАСС · state media"
    plain = Item("https://x.example/rss", "1", "КНДР", "", None, None, "ru", "X")
    assert strip_html(render_alert(plain, [match])).splitlines()[1] == "X"

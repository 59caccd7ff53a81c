"""watchers/tme.py: saved t.me/s/ pages (tests/fixtures/tme) → one Item per post, as a reader would see it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from watchers.tme import TITLE_MAX, parse_channel, split_title

FIXTURES = Path(__file__).parent / "fixtures" / "tme"
URL = "https://t.me/s/kursk_front"


def page(name: str, channel: str = "kursk_front"):  # type: ignore[no-untyped-def]
    return parse_channel((FIXTURES / f"{name}.html").read_bytes(), channel=channel, feed_url=URL, feed_name="КФ")


def posts() -> dict[str, tuple[str, str]]:
    return {item.uid: (item.title, item.summary) for item in page("kursk_front").items}


def test_one_item_per_post_with_a_stable_uid_link_and_utc_date() -> None:
    parsed = page("kursk_front")
    first = parsed.items[0]
    assert first.uid == "t.me/kursk_front/4802"
    assert first.link == "https://t.me/kursk_front/4802"
    assert first.published == datetime(2026, 11, 30, 5, 40, tzinfo=UTC)
    assert first.feed_url == URL and first.feed_name == "КФ"
    assert [i.uid.rsplit("/", 1)[1] for i in parsed.items] == ["4802", "4803", "4806", "4807", "4808", "4809", "4811"]
    assert parsed.title == "Курский фронт | Z"
    # the same page parsed again gives the same uids (stable identity)
    assert [i.uid for i in page("kursk_front").items] == [i.uid for i in parsed.items]


def test_service_messages_and_deleted_posts_are_skipped_but_their_ids_count_for_paging() -> None:
    parsed = page("kursk_front")
    uids = {i.uid for i in parsed.items}
    assert "t.me/kursk_front/4801" not in uids  # "Channel photo updated"
    assert "t.me/kursk_front/4804" not in uids  # "Post not found"
    assert "t.me/kursk_front/4810" not in uids  # "pinned a photo"
    assert parsed.skipped == 3
    assert parsed.oldest_id == 4801 and parsed.newest_id == 4811


CASES = {
    "text: first line is the title, the rest the summary, views noted": (
        "t.me/kursk_front/4803",
        "🇰🇵🇷🇺 Военнослужащие КНДР продолжают работу в Курской области",
        ["Корейской народной армии совместно с российскими военными", "#КНДР #Курск", "[3 photos · 48.2K views]"],
    ),
    "forwarded with a video": (
        "t.me/kursk_front/4806",
        "Минобороны России: в ходе совместных учений отработаны действия по отражению ударов с воздуха",
        ["[Forwarded from Минобороны России · 1 video · 22.9K views]"],
    ),
    "poll: the question is the text, options follow": (
        "t.me/kursk_front/4807",
        "📊 Как вы оцениваете перспективы военного сотрудничества России и КНДР?",
        ["• Будет расширяться", "• Сойдёт на нет"],
    ),
    "photo without text": ("t.me/kursk_front/4808", "[1 photo]", ["15.5K views"]),
    "reply: the quoted post is not part of the text": (
        "t.me/kursk_front/4809",
        "Ответ подписчикам: нет, это не учения.",
        ["[9.8K views]"],
    ),
    "document": ("t.me/kursk_front/4811", "Сводка за день — в PDF по ссылке.", ["file svodka_30_11.pdf"]),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
def test_post_kinds(case: tuple[str, str, list[str]]) -> None:
    uid, title, in_summary = case
    got_title, summary = posts()[uid]
    assert got_title == title
    for fragment in in_summary:
        assert fragment in summary
    assert "эшелон" not in summary, "a reply's quoted text belongs to another post"
    assert "fake" not in summary and "TWidgetMessage" not in summary, "script text never reaches an item"


def test_links_in_text_keep_their_words_and_lines_break_at_br() -> None:
    title, summary = posts()["t.me/kursk_front/4802"]
    assert title == "🇷🇺 Утренняя сводка по Курской области"
    assert summary.startswith("Противник пытался атаковать в районе Суджи, атаки отбиты. Подробнее в предыдущем посте.")


def test_a_before_page_holds_older_posts() -> None:
    parsed = page("kursk_front_before_4801")
    assert parsed.ids == (4795, 4796, 4797, 4798, 4799, 4800)
    assert parsed.skipped == 1  # "Channel name was changed"


def test_channel_pages_that_are_not_previews() -> None:
    contact = page("private_contact_page", "secret_unit")
    assert (contact.is_preview, contact.ids, contact.items) == (False, (), ())
    empty = page("empty", "quiet_channel")
    assert empty.is_preview and empty.ids == ()
    renamed = page("renamed", "old_front")
    assert renamed.authors == frozenset({"kursk_front"})


@pytest.mark.parametrize("body", [b"", b"   ", b"\x00\xff\xfe garbage", b"<html><body><p>hello</p></body></html>"])
def test_garbage_is_an_empty_page_not_an_exception(body: bytes) -> None:
    parsed = parse_channel(body, channel="x_chan", feed_url=URL)
    assert parsed.items == () and not parsed.ids


def test_a_long_first_line_is_cut_at_a_word_for_the_title_and_kept_whole_in_the_summary() -> None:
    line = "КНДР " * 100
    title, summary = split_title(line.strip() + "\nвторая строка")
    assert len(title) <= TITLE_MAX + 1 and title.endswith("…") and not title[:-1].endswith(" ")
    assert summary.startswith(line.strip())

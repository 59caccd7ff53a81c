"""The same story from several outlets becomes one digest entry; different stories stay apart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.models import Hit, Item, Match
from delivery.cluster import Entry, cluster, same_story

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
DR = ("DPRK", "RUSSIA")


def entry(title: str, lang: str, groups: tuple[str, ...] = DR, hours: float = 0, summary: str = "") -> Entry:
    hits = tuple(Hit(g, "title", 0, 1, g) for g in groups)
    return Entry(
        Item("u", title, title, summary, None, T0 + timedelta(hours=hours), lang, "x"), (Match("r", "instant", hits),)
    )


SAME = [
    (
        "ru rewording",
        entry("Шойгу прибыл в Пхеньян для переговоров с Ким Чен Ыном", "ru"),
        entry("Секретарь Совбеза Шойгу прибыл в Пхеньян на переговоры с Ким Чен Ыном", "ru"),
    ),
    (
        "ru case forms",
        entry("КНДР направит в Россию 5 тыс. военных строителей", "ru"),
        entry("Из КНДР в Россию направят 5 тыс. военных строителей — разведка", "ru"),
    ),
    (
        "en wires",
        entry("North Korea sends 5,000 military builders to Russia, Seoul says", "en"),
        entry("Seoul says North Korea sending 5,000 military builders to Russia", "en"),
    ),
    (
        "ko outlets",
        entry('국정원 "북한, 러시아에 군사 건설인력 5천명 파견"', "ko"),
        entry("북한, 러시아에 군사 건설인력 5천명 파견…국정원", "ko"),
    ),
    (
        "cross-language with shared figure",
        entry("NIS: 5,000 North Korean builders moving to Russia", "en", summary="NIS said on Tuesday"),
        entry(
            "Разведка Южной Кореи: 5 тыс. строителей из КНДР едут в Россию",
            "ru",
            hours=2,
            summary="Об этом сообщила NIS",
        ),
    ),
]
DIFFERENT = [
    (
        "two DPRK–Russia stories, same day",
        entry("Шойгу прибыл в Пхеньян для переговоров", "ru"),
        entry("КНДР передала России партию ракет KN-23", "ru"),
    ),
    (
        "different numbers",
        entry("North Korea sends 5,000 builders to Russia", "en"),
        entry("North Korea sends 6,000 sappers to Russia", "en"),
    ),
    (
        "same words, other entities",
        entry("Russia and China hold naval drills", "en", ("RUSSIA", "CHINA")),
        entry("Russia and North Korea hold naval drills", "en"),
    ),
    (
        "cross-language without shared facts",
        entry("North Korean troops spotted near Kursk", "en"),
        entry("Северокорейские военные замечены под Курском", "ru"),
    ),
    (
        "cross-language too far apart",
        entry("NIS: 5,000 builders to Russia", "en", summary="NIS"),
        entry("NIS: 5 тыс. строителей едут в Россию", "ru", hours=72, summary="NIS"),
    ),
    (
        "en different events",
        entry("Kim Jong Un inspects Russian-made air defence", "en"),
        entry("Putin thanks Kim Jong Un for troops in Kursk", "en"),
    ),
]


@pytest.mark.parametrize(("name", "a", "b"), SAME, ids=[c[0] for c in SAME])
def test_same_story_merges(name: str, a: Entry, b: Entry) -> None:
    assert same_story(a, b), name


@pytest.mark.parametrize(("name", "a", "b"), DIFFERENT, ids=[c[0] for c in DIFFERENT])
def test_different_stories_stay_apart(name: str, a: Entry, b: Entry) -> None:
    assert not same_story(a, b), name


def test_cluster_is_transitive_and_lists_every_source_earliest_first() -> None:
    a = entry("North Korea sends 5,000 builders to Russia", "en", hours=1)
    b = entry("North Korea is sending 5,000 builders to Russia, NIS says", "en", hours=0)
    c = entry("NIS says 5,000 North Korean builders head to Russia", "en", hours=3)
    d = entry("Shoigu arrives in Pyongyang", "en")
    clusters = cluster([a, b, c, d])
    assert sorted(len(x.members) for x in clusters) == [1, 3]
    big = next(x for x in clusters if len(x.members) == 3)
    assert big.lead is b

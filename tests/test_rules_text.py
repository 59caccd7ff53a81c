"""Normalisation, tokens, sentences and word positions — shared by aliases and item text."""

from __future__ import annotations

import pytest

from rules.text import (
    has_sentence_break,
    normalize,
    script_of,
    sentence_starts,
    tokens,
    word_counts,
)

TOKENS = [
    ("lowercase and ё", "Ещё РОССИЯ", ["еще", "россия"]),
    ("hyphen separates", "Kim Jong-un", ["kim", "jong", "un"]),
    ("every dash separates", "Москва–Пхеньян—Сеул‑Токио", ["москва", "пхеньян", "сеул", "токио"]),
    ("apostrophes separate", "Russia's Korea’s", ["russia", "s", "korea", "s"]),
    ("punctuation and quotes", "«КНДР», (Россия)!", ["кндр", "россия"]),
    ("underscore separates", "a_b", ["a", "b"]),
    ("digits are tokens", "Су-57 и Т-72", ["су", "57", "и", "т", "72"]),
    ("korean particles stay attached", "북한의 러시아와", ["북한의", "러시아와"]),
    ("ligature", "ﬁnal", ["final"]),
    ("full width", "ＫＮＤＲ２０２４", ["kndr2024"]),
    ("soft hyphen inside a word", "Пхе\u00adньян", ["пхеньян"]),
    ("zero-width space inside a word", "Рос\u200bсия", ["россия"]),
    ("decomposed й", "Краи\u0306", ["край"]),
    ("no-break space separates", "Ким\u00a0Чен\u00a0Ын", ["ким", "чен", "ын"]),
    ("empty", "", []),
]


@pytest.mark.parametrize(("name", "text", "expected"), TOKENS, ids=[c[0] for c in TOKENS])
def test_tokens(name: str, text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


@pytest.mark.parametrize(
    "text",
    ["Обычный текст, без сюрпризов.", "North Korea's leader", "북한의 김정은", "Ещё\u00a0раз…"],
)
def test_fast_path_keeps_offsets(text: str) -> None:
    norm = normalize(text)
    assert norm.starts is None and len(norm.text) == len(text)
    assert norm.text == text.lower().replace("ё", "е")


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Визит в Пхе\u00adньян завершён", "Пхе\u00adньян"),
        ("ﬁnal ＫＮＤＲ report", "ＫＮＤＲ"),
        ("Краи\u0306 и Россия", "Россия"),
        ("İstanbul и Россия", "Россия"),
    ],
)
def test_slow_path_maps_back_to_the_original(text: str, word: str) -> None:
    norm = normalize(text)
    assert norm.starts is not None
    target = normalize(word).text.replace("\u00ad", "")
    start = norm.text.index(target)
    assert norm.surface(start, start + len(target)) == word


def test_slow_path_keeps_separators_for_regex_and_sentences() -> None:
    norm = normalize("ﬁrst. Т-72!")
    assert norm.text == "first. т-72!"


@pytest.mark.parametrize(
    ("token", "script"),
    [("россия", "cyrillic"), ("korea", "latin"), ("북한의", "hangul"), ("т72", "other"), ("57", "other"),
     ("kndrкндр", "other")],
)  # fmt: skip
def test_script_of(token: str, script: str) -> None:
    assert script_of(token) == script


SENTENCES = [
    ("period", "КНДР запустила ракету. Россия провела учения.", ["Россия"]),
    ("exclamation and question", "Что? Да! Нет", ["Да!", "Нет"]),
    ("ellipsis", "Итак… Далее", ["Далее"]),
    ("three dots", "Итак... Далее", ["Далее"]),
    ("line break", "Заголовок\nТекст", ["Текст"]),
    ("abbreviation тыс.", "Около 5 тыс. северокорейских военных", []),
    ("year г.", "В 2024 г. Россия и КНДР", []),
    ("initials", "В. В. Путин встретился", []),
    ("Mr.", "Mr. Kim met Mr. Putin", []),
    ("decimal", "Рост 5.5 процента", []),
    ("lowercase after a period", "см. выше сказанное", []),
    ("korean", "북한이 발사했다. 러시아는 침묵했다.", ["러시아는"]),
]


@pytest.mark.parametrize(("name", "text", "starts"), SENTENCES, ids=[c[0] for c in SENTENCES])
def test_sentence_starts(name: str, text: str, starts: list[str]) -> None:
    norm = normalize(text)
    found = [text[i:].lstrip().split()[0] for i in sentence_starts(norm) if text[i:].strip()]
    assert found == starts


def test_has_sentence_break_looks_only_between() -> None:
    norm = normalize("КНДР и Россия. Потом Пхеньян")
    assert not has_sentence_break(norm, 0, 13)
    assert has_sentence_break(norm, 5, 20)
    assert not has_sentence_break(norm, 20, 10)


def test_word_counts_count_whitespace_words() -> None:
    text = "КНДР и Россия: военно-техническое сотрудничество"
    positions = [0, text.index("Россия"), text.index("военно"), text.index("техническое"), len(text)]
    assert word_counts(text, positions) == {positions[0]: 0, positions[1]: 2, positions[2]: 3,
                                            positions[3]: 4, positions[4]: 5}  # fmt: skip


def _reference_word_counts(text: str, positions: list[int]) -> dict[int, int]:
    """The plain definition: how many whitespace-separated words start before each offset."""
    return {p: len(text[:p].split()) for p in sorted(set(positions))}


@pytest.mark.parametrize(
    "alphabet",
    ["ab ", "ab  -", "ab \n", "кн\u00a0 ", "ab\t \u2009x", "북한 의"],
    ids=["single spaces", "double spaces", "line breaks", "no-break space", "tab and thin space", "korean"],
)
def test_word_counts_agree_with_splitting_whatever_the_whitespace(alphabet: str) -> None:
    """Counting at many offsets in one pass gives what splitting the text before each offset gives."""
    import random

    rng = random.Random(alphabet)
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        positions = [rng.randint(0, len(text) + 2) for _ in range(rng.randint(1, 8))]
        assert word_counts(text, positions) == _reference_word_counts(text, positions), (text, positions)


@pytest.mark.parametrize(
    "text",
    [
        "КНДР и Россия. Москва; Пхеньян!? Ким... Путин. 5.5 млн. тыс. руб. Mr. Kim met г. Москва. ok",
        "North Korea... Russia?! U.S. and S. Korea; 3.14 troops.\nMoscow\r\nPyongyang… Seoul。次",
        "북한. 러시아! 평양? 모스크바; 김정은…\u2029 끝. a.b. c . . d",
    ],
    ids=["ru", "en", "ko and odd marks"],
)
def test_a_sentence_break_between_two_offsets_is_a_sentence_start_in_the_gap(text: str) -> None:
    """What the engine relies on (rules/engine.py, ``near: sentence``): the field's sentence starts, found
    once, say of every gap what ``has_sentence_break`` says of it alone."""
    import bisect

    norm = normalize(text)
    starts = sentence_starts(norm)
    assert len(starts) >= 5
    n = len(norm.text)
    for a in range(n + 1):
        for b in range(n + 1):
            in_gap = a < b and bisect.bisect_right(starts, a) != bisect.bisect_right(starts, b)
            assert has_sentence_break(norm, a, b) == in_gap, (a, b)

"""Alias expansion: the surface forms each alias stands for, per language."""

from __future__ import annotations

import pytest

from rules.morph import AliasError, alias_variants, analyzer, english_forms, stem


def shown(alias: str, *, exact: bool = False) -> set[str]:
    """Variants as text: exact words as is, ``word*`` for prefixes, ``stem~`` for Snowball stems."""
    mark = {"e": "", "p": "*", "s": "~"}
    return {" ".join(v + mark[k] for k, v in variant) for variant in alias_variants(alias, exact=exact)}


FORMS = [
    # (name, alias, forms that must be among its variants)
    ("noun cases", "Пхеньян", {"пхеньян", "пхеньяна", "пхеньяне", "пхеньяном", "пхеньяну"}),
    ("noun instrumental", "Россия", {"россия", "россии", "россию", "россией"}),
    ("abbreviation does not inflect", "КНДР", {"кндр"}),
    ("adjective genders, cases, numbers", "северокорейский",
     {"северокорейский", "северокорейская", "северокорейское", "северокорейских", "северокорейскими",
      "северокорейскую"}),
    ("phrase agrees", "Северная Корея", {"северная корея", "северной кореи", "северную корею",
                                         "северной кореей", "северной корее"}),
    ("phrase keeps its genitive", "Министр обороны КНДР",
     {"министр обороны кндр", "министра обороны кндр", "министром обороны кндр"}),
    ("plural phrase", "Вооружённые силы", {"вооруженные силы", "вооруженных сил", "вооруженными силами"}),
    ("adjective + noun with ё", "баллистическая ракета", {"баллистической ракеты", "баллистические ракеты"}),
    ("russian name: both words", "Виктор Горемыкин", {"виктором горемыкиным", "виктора горемыкина"}),
    ("korean name declines at the end", "Ким Чен Ын", {"ким чен ын~"}),
    ("unknown surname falls back to its stem", "Мацегора", {"мацегор~"}),
    ("hyphenated compound", "военно-техническое сотрудничество",
     {"военно техническое сотрудничество", "военно технического сотрудничества"}),
    ("english plural", "missile", {"missile", "missiles"}),
    ("english phrase: the last word", "North Korean", {"north korean", "north koreans"}),
    ("english hyphen = space", "Kim Jong-un", {"kim jong un"}),
    ("korean prefix", "북한", {"북한*"}),
    ("explicit prefix", "северокоре*", {"северокоре*"}),
    ("prefix in a phrase", "российск* военн*", {"российск* военн*"}),
    ("digits exact", "Су-57", {"су 57"}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "alias", "expected"), FORMS, ids=[c[0] for c in FORMS])
def test_alias_forms(name: str, alias: str, expected: set[str]) -> None:
    variants = shown(alias)
    assert expected <= variants, sorted(variants)


NOT_FORMS = [
    ("ракета is not ракетка", "ракета", "ракетка"),
    ("Россия is not Россошь", "Россия", "россошь"),
    ("Москва is not москвич", "Москва", "москвич"),
    ("adjective and noun must agree", "Северная Корея", "северной корея"),
    ("no comparative of an adjective", "военный", "военнее"),
]


@pytest.mark.parametrize(("name", "alias", "form"), NOT_FORMS, ids=[c[0] for c in NOT_FORMS])
def test_alias_does_not_produce(name: str, alias: str, form: str) -> None:
    assert form not in shown(alias)


def test_exact_alias_is_one_variant_as_written() -> None:
    assert shown("КНА", exact=True) == {"кна"}
    assert shown("Северная Корея", exact=True) == {"северная корея"}


def test_snowball_stem_confirms_unknown_word_forms() -> None:
    assert not analyzer().word_is_known("мацегора")
    assert {stem(w) for w in ("мацегора", "мацегоры", "мацегорой", "мацегоре")} == {"мацегор"}
    assert stem("горемыкиным") == stem("горемыкин")
    assert stem("ына") == stem("ыном") == "ын"


def test_english_forms() -> None:
    assert english_forms("ally") == ("ally", "allys", "allies")
    assert english_forms("day") == ("day", "days")
    assert "boxes" in english_forms("box")


ALIAS_ERRORS = [
    ("empty", "  ", "no letters or digits"),
    ("only punctuation", "«—»", "no letters or digits"),
    ("star inside", "ра*кета", "may only end a word"),
    ("star alone", "*", "must follow a letter"),
    ("short prefix", "ра*", "shorter than 3 letters"),
    ("one-syllable korean", "북", "one syllable"),
]


@pytest.mark.parametrize(("name", "alias", "message"), ALIAS_ERRORS, ids=[c[0] for c in ALIAS_ERRORS])
def test_bad_aliases_are_refused(name: str, alias: str, message: str) -> None:
    with pytest.raises(AliasError, match=message):
        alias_variants(alias)


def test_exact_prefix_is_refused() -> None:
    with pytest.raises(AliasError, match="cannot also be a prefix"):
        alias_variants("ракет*", exact=True)


def test_analyser_is_created_once() -> None:
    assert analyzer() is analyzer()

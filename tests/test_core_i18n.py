"""The message catalogue: every language says everything English says, with the same placeholders and
complete plural forms, and a chat gets the language it chose (or its user's app language)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import i18n


def test_every_language_has_every_key_with_the_same_placeholders_and_all_plural_forms() -> None:
    assert set(i18n.CATALOGUES) == {"en", "ru"}
    assert i18n.problems(i18n.CATALOGUES) == []
    assert len(i18n.CATALOGUES["en"]) > 80, "the catalogue holds the interface, not a sample of it"


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ("missing key", "ru: missing key test.no_match"),
        ("extra key", "ru: key test.bogus is not in en"),
        ("lost placeholder", "ru: unsubscribe.none has placeholders [], en has ['chat']"),
        ("renamed placeholder", "ru: unsubscribe.none has placeholders ['chta'], en has ['chat']"),
        ("plural form missing", "ru: digest.items has plural forms ['many', 'one'], needs ['few', 'many', 'one']"),
        ("plain where plural", "ru: digest.stories is a plural entry in en"),
    ],
)
def test_the_catalogue_check_finds_what_a_translator_got_wrong(broken: str, problem: str) -> None:
    ru = dict(i18n.CATALOGUES["ru"])
    if broken == "missing key":
        del ru["test.no_match"]
    elif broken == "extra key":
        ru["test.bogus"] = "x"
    elif broken == "lost placeholder":
        ru["unsubscribe.none"] = "Нет подписки."
    elif broken == "renamed placeholder":
        ru["unsubscribe.none"] = "У {chta} нет подписки."
    elif broken == "plural form missing":
        ru["digest.items"] = {"one": "{n} материал", "many": "{n} материалов"}
    else:
        ru["digest.stories"] = "{n} сюжетов"
    assert problem in i18n.problems({"en": i18n.CATALOGUES["en"], "ru": ru})


@pytest.mark.parametrize(
    ("n", "text"),
    [(1, "1 материал"), (2, "2 материала"), (4, "4 материала"), (5, "5 материалов"), (11, "11 материалов"),
     (12, "12 материалов"), (14, "14 материалов"), (21, "21 материал"), (22, "22 материала"),
     (25, "25 материалов"), (0, "0 материалов"), (101, "101 материал"), (111, "111 материалов")],
)  # fmt: skip
def test_russian_counts_take_the_right_form(n: int, text: str) -> None:
    assert i18n.t("digest.items", "ru", n=n) == text


def test_english_counts_and_fallbacks() -> None:
    assert i18n.t("fold.bulk", "en", n=1) == "📚 1 more matching item in this round"
    assert i18n.t("fold.bulk", "en", n=3) == "📚 3 more matching items in this round"
    assert i18n.t("test.no_match", "de") == "No rule matches this text.", "an unknown language speaks English"
    with i18n.using("ru"):
        assert i18n.t("test.no_match") == "Ни одно правило не срабатывает на этот текст."
    assert i18n.t("test.no_match") == "No rule matches this text.", "the language ends with its block"


@pytest.mark.parametrize(
    ("stored", "chat_type", "code", "default", "lang"),
    [
        (None, "private", "ru", "en", "ru"),
        (None, "private", "ru-RU", "en", "ru"),
        (None, "private", "en-GB", "ru", "en"),
        (None, "private", "ko", "en", "en"),
        (None, "private", None, "ru", "ru"),  # Telegram gave no language: the configured default
        (None, "supergroup", "ru", "en", "en"),  # a group speaks the configured default, not its sender's
        (None, "channel", None, "ru", "ru"),
        ("en", "private", "ru", "ru", "en"),  # /language wins over everything
        ("ru", "supergroup", "en", "en", "ru"),
        ("xx", "supergroup", None, "en", "en"),  # a stored language the catalogue lost: the default
    ],
)
def test_a_chats_language(stored: str | None, chat_type: str, code: str | None, default: str, lang: str) -> None:
    assert i18n.chat_language(stored, chat_type, code, default) == lang


def test_a_malformed_catalogue_file_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "xx.yaml"
    path.write_text("ok: fine\nbad: [1, 2]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"xx\.yaml: bad"):
        i18n.load_catalogue(path)


def test_every_key_the_code_asks_for_is_in_the_catalogue() -> None:
    """A key typed wrong in the code would only fail when that reply is sent: every literal "prefix.name"
    with a catalogue prefix, in every module that speaks through the catalogue, must be a key."""
    import re

    from chat.commands import USAGES

    repo = Path(__file__).resolve().parents[1]
    prefixes = {key.split(".")[0] for key in i18n.CATALOGUES["en"]}
    asked = set()
    for path in [*repo.glob("chat/*.py"), *repo.glob("delivery/*.py"), *repo.glob("service/*.py")]:
        source = path.read_text(encoding="utf-8")
        if "i18n" not in source:
            continue
        for key in re.findall(r"""["']([a-z_]+\.[a-z_]+)["']""", source):
            if key.split(".")[0] in prefixes:
                asked.add(key)
    asked |= {f"cmd.{name}" for name, _ in USAGES}
    assert len(asked) > 100
    assert sorted(asked - i18n.CATALOGUES["en"].keys()) == []


def test_the_catalogues_read_with_libyaml_are_what_the_pure_python_loader_reads() -> None:
    import yaml

    from core import i18n

    for lang in i18n.LANGUAGES:
        path = i18n.LOCALES / f"{lang}.yaml"
        assert i18n.CATALOGUES[lang] == yaml.safe_load(path.read_text(encoding="utf-8")), lang

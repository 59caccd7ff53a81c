"""The interface's words, in English and Russian, from one message catalogue per language.

Why a YAML catalogue with named keys rather than gettext: the bot already reads YAML (config, rules),
the catalogue needs no build step (gettext needs Babel to extract and a compiled .mo committed or built),
a key names where a text is used (``subscribe.done``) instead of repeating the English sentence as its
own key, and Russian plurals are three explicit forms (one/few/many) that a test can check are complete,
instead of a C plural expression in a .po header. Adding a language is one more file beside
``core/locales/en.yaml``, with the same keys and placeholders (tests/test_core_i18n.py walks them).

Which language a reply uses is decided once per update (chat/handlers.py) and held in a context
variable for the duration of that handler, so the pure command functions in chat/commands.py ask for
``t("key")`` without a language parameter threaded through every call; delivery (alerts, digests)
passes the recipient chat's language explicitly.
"""

from __future__ import annotations

import string
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import yaml

LOCALES = Path(__file__).with_name("locales")
DEFAULT = "en"
# the plural categories each language's entries must give (CLDR names; English "other", Russian "many")
PLURAL_FORMS: dict[str, tuple[str, ...]] = {"en": ("one", "other"), "ru": ("one", "few", "many")}
LANGUAGES: tuple[str, ...] = tuple(PLURAL_FORMS)

Entry = str | dict[str, str]


def load_catalogue(path: Path) -> dict[str, Entry]:
    """A catalogue file: a mapping of key → text, or key → {plural form: text}; anything else is an error
    naming the file and key."""
    # libyaml's loader where PyYAML has it (the same data, tests/test_core_i18n.py): the pure-Python one took
    # ~100 ms of every process's start-up, ``bot.py match`` included (issue 16)
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict):
        raise ValueError(f"{path.name}: a catalogue is a mapping of key to text")
    out: dict[str, Entry] = {}
    for key, value in data.items():
        if isinstance(value, str):
            out[str(key)] = value
        elif isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
            out[str(key)] = {str(k): v for k, v in value.items()}
        else:
            raise ValueError(f"{path.name}: {key}: a text or a mapping of plural forms to texts")
    return out


CATALOGUES: dict[str, dict[str, Entry]] = {lang: load_catalogue(LOCALES / f"{lang}.yaml") for lang in LANGUAGES}

_current: ContextVar[str] = ContextVar("interface_language", default=DEFAULT)


def current() -> str:
    return _current.get()


@contextmanager
def using(lang: str) -> Iterator[None]:
    """Replies built inside the block speak ``lang``."""
    token = _current.set(lang if lang in CATALOGUES else DEFAULT)
    try:
        yield
    finally:
        _current.reset(token)


def language_for(language_code: str | None) -> str | None:
    """A Telegram user's ``language_code`` as an interface language: ``ru``, ``ru-RU`` → ru; any other
    code → en; None when Telegram gave none."""
    if not language_code:
        return None
    return "ru" if language_code.lower().startswith("ru") else "en"


def plural_form(lang: str, n: int) -> str:
    """The plural category of ``n``: Russian 1, 21 → one; 2–4, 22 → few; 5–20, 11–14, 0 → many."""
    n = abs(n)
    if lang == "ru":
        if n % 10 == 1 and n % 100 != 11:
            return "one"
        if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
            return "few"
        return "many"
    return "one" if n == 1 else "other"


def t(key: str, /, lang: str | None = None, **params: Any) -> str:
    """The text of ``key`` in ``lang`` (default: the current reply's language), with ``{placeholders}``
    filled; a plural entry needs ``n``. A key missing from a language falls back to English (the
    catalogue test keeps that from happening), a key missing from English is a KeyError."""
    lang = lang or _current.get()
    entry = CATALOGUES.get(lang, {}).get(key)
    if entry is None:
        lang, entry = DEFAULT, CATALOGUES[DEFAULT][key]
    if isinstance(entry, dict):
        entry = entry[plural_form(lang, int(params["n"]))]
    return entry.format(**params) if params else entry


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def problems(catalogues: Mapping[str, Mapping[str, Entry]]) -> list[str]:
    """What is wrong between the catalogues: keys missing or extra against English, placeholders that
    differ, plural forms missing or unknown; [] when every language can say everything."""
    found: list[str] = []
    base = catalogues[DEFAULT]
    for lang, cat in catalogues.items():
        forms = set(PLURAL_FORMS.get(lang, ()))
        found += [f"{lang}: missing key {k}" for k in sorted(base.keys() - cat.keys())]
        found += [f"{lang}: key {k} is not in {DEFAULT}" for k in sorted(cat.keys() - base.keys())]
        for key, entry in cat.items():
            texts = entry.values() if isinstance(entry, dict) else [entry]
            if isinstance(entry, dict) and set(entry) != forms:
                found.append(f"{lang}: {key} has plural forms {sorted(entry)}, needs {sorted(forms)}")
            if key not in base:
                continue
            b = base[key]
            want = set().union(*(placeholders(x) for x in (b.values() if isinstance(b, dict) else [b])))
            if isinstance(b, dict) != isinstance(entry, dict):
                found.append(f"{lang}: {key} is {'a plural' if isinstance(b, dict) else 'a plain'} entry in {DEFAULT}")
            for text in texts:
                try:
                    got = placeholders(text)
                except ValueError as exc:
                    found.append(f"{lang}: {key}: {exc}")
                    continue
                if got - want - {"n"} or (want - {"n"}) - got:
                    found.append(f"{lang}: {key} has placeholders {sorted(got)}, {DEFAULT} has {sorted(want)}")
    return found


def chat_language(stored: str | None, chat_type: str | None, language_code: str | None, default: str) -> str:
    """A chat's interface language: the one chosen with /language; else, in a private chat, the user's
    Telegram language (ru* → ru, else en); else (groups, channels, no language_code) ``default``."""
    if stored in CATALOGUES:
        return str(stored)
    if chat_type == "private":
        return language_for(language_code) or default
    return default

"""Alias → the surface forms it matches, per language, computed once when rules load.

Matching never does morphology: every alias is expanded here into *variants*, each a sequence of
token matchers, and the engine only compares tokens at run time:

* ``("e", form)`` — the token equals ``form``;
* ``("p", prefix)`` — the token starts with ``prefix`` (Korean words with their particles, ``word*``);
* ``("s", stem)`` — the token's Snowball stem equals ``stem`` (Russian words pymorphy3 does not know,
  e.g. a rare surname: ``Мацегора`` → ``Мацегоры``, ``Мацегорой``). The engine finds candidates by the
  prefix ``stem`` and confirms with the stemmer, so only a few tokens are ever stemmed.

Per language (decided by the letters of each word):

* **Russian** — pymorphy3 (OpenCorpora dictionary, C DAWG backend) gives the lexeme of each word. A
  single word gets all its forms (nouns: every case and number; adjectives: every gender, case and
  number; verbs: all forms). A phrase keeps its words in agreement: the leading run of nominative
  adjectives and nouns that agree in number and gender (``Северная Корея``, ``Вооружённые силы``,
  ``Виктор Горемыкин``) is declined together — ``Северной Кореи``, ``Северную Корею`` — while the rest
  stays as written (``Министр обороны`` → ``министра обороны``). Nouns in apposition may also stay as
  written, because Korean names decline only at the end: ``Ким Чен Ын`` → ``Ким Чен Ына``. Words
  pymorphy3 does not know fall back to the Snowball stem.
* **English** — the last word takes plural endings (``s``, ``es``, ``y``→``ies``); the possessive
  ``'s`` is a separate token already; hyphens are separators, so ``Kim Jong Un`` = ``Kim Jong-un``.
  Demonyms (``Russian``, ``North Korean``) are aliases of their own.
* **Korean** — every word is a prefix at a word start, so particles glue on (``북한의``, ``북한군은``);
  near misses (``북한강``) are the group's ``exclude``. One-syllable Korean words are refused: as
  prefixes they match far too much (write ``=X`` for the exact word).
* Digits and mixed tokens (``Су-57`` → ``су``, ``57``) match exactly; ``=alias`` makes every word exact;
  ``word*`` makes that word a prefix (at least 3 letters).

Measured with ``python bench/match.py`` (section "morphology": 12 Russian aliases against 62
hand-labelled sentences with inflections, unknown surnames and near misses such as ракетка, Россошь,
москвич, Росс; scored per alias-sentence pair; Python 3.11, one core):

    ===========================================  =====  =====  =====  ===================
    approach                                       P      R     F1    speed
    ===========================================  =====  =====  =====  ===================
    exact word                                    1.00   0.22   0.37  —
    Snowball stem of every token at run time      0.98   0.84   0.91  4.5 M tokens/s
    pymorphy3 lemma of every token, uncached      1.00   0.90   0.95  50–70 k tokens/s
    pymorphy3 lemma, ``lru_cache``                1.00   0.90   0.95  17 M lookups/s
    **forms at load + Snowball fallback**         1.00   0.97   0.98  1.6 M tokens/s [*]
    ===========================================  =====  =====  =====  ===================

    [*] the whole engine scan (normalisation, automaton, boundaries), not a per-token step.

The sample was written by the engine's author, so read it as a comparison, not an absolute; the
independent sample in ``notes/matching.md`` ranks the approaches the same way (forms at load 0.93,
lemmas 0.89–0.91, Snowball 0.86). The two misses left are a coordinated phrase (``в Курской и
Белгородской областях``) and a non-standard spelling (``Северо-корейская``). Lemmas miss those too,
plus unknown-word forms (``Мацегорой``) and Korean names (``Ким Чен Ына``); Snowball alone misses
``Пхеньяне`` and ``Северной Кореи`` (unstable stems) and confuses ``Россия`` with ``Росс``.
Creating the analyser takes 0.06–0.5 s and ~20 MiB (one per process, cached below); the 12 aliases
expand to 100 forms, the ~470 aliases of the default rules to ~1,400 automaton keys.

Generating forms at load time keeps the analyser out of the hot path entirely: matching is exact
token comparison in one Aho-Corasick automaton.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import cache, lru_cache
from typing import Any

from rules.text import script_of, tokens

Matcher = tuple[str, str]  # (kind, value); kind is "e" exact, "p" prefix or "s" stem
Variant = tuple[Matcher, ...]

MIN_PREFIX = 3
MAX_VARIANTS = 5_000

_CASES = ("nomn", "gent", "datv", "accs", "ablt", "loct")
_CASE_NORMAL = {
    "gen1": "gent",
    "gen2": "gent",
    "acc2": "accs",
    "loc1": "loct",
    "loc2": "loct",
    "voct": "nomn",
}
_VERBISH = frozenset({"INFN", "VERB", "PRTF", "PRTS", "GRND"})
_ADJ = frozenset({"ADJF", "PRTF"})


class AliasError(ValueError):
    """An alias that cannot be compiled; the message says why, for the rule author."""


@cache
def analyzer() -> Any:
    """The process-wide pymorphy3 analyser (creating one costs 0.1–0.5 s and ~26 MiB)."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@cache
def _stemmer() -> Any:
    import Stemmer

    # No internal cache (size 0): stemming runs at match time, which must not change shared state.
    return Stemmer.Stemmer("russian", 0)


def stem(word: str) -> str:
    """Russian Snowball stem of a normalised word (a prefix of it)."""
    return str(_stemmer().stemWord(word))


def _fold(s: str) -> str:
    return s.lower().replace("ё", "е")


def alias_variants(text: str, *, exact: bool = False) -> tuple[Variant, ...]:
    """All token-matcher sequences for one alias (``text`` without its ``=`` marker).

    Raises :class:`AliasError` for an empty alias, a misplaced ``*``, a too-short prefix, a
    one-syllable Korean word, or an alias with more than :data:`MAX_VARIANTS` variants.
    """
    words = _split_words(text, exact=exact)
    if exact:
        return (tuple(("e", w) for w, _ in words),)
    segments: list[list[tuple[frozenset[Matcher], ...]]] = []  # per segment: its alternative rows
    i = 0
    while i < len(words):
        w, star = words[i]
        if star:
            segments.append([(frozenset({("p", w)}),)])
            i += 1
            continue
        kind = script_of(w)
        if kind == "cyrillic":
            j = i
            while j < len(words) and not words[j][1] and script_of(words[j][0]) == "cyrillic":
                j += 1
            segments.append(list(_russian_rows(tuple(w for w, _ in words[i:j]))))
            i = j
            continue
        if kind == "hangul":
            if len(w) < 2:
                raise AliasError(
                    f"the Korean word {w!r} has one syllable: as a prefix it matches too much; "
                    f"write '={text.strip()}' to match it only as a whole word"
                )
            options = frozenset({("p", w)})
        elif kind == "latin" and i == len(words) - 1:
            options = frozenset(("e", f) for f in english_forms(w))
        else:
            options = frozenset({("e", w)})
        segments.append([(options,)])
        i += 1
    out: dict[Variant, None] = {}
    for rows in itertools.product(*segments):
        row = tuple(itertools.chain.from_iterable(rows))
        for variant in itertools.product(*(sorted(opts) for opts in row)):
            out[variant] = None
            if len(out) > MAX_VARIANTS:
                raise AliasError(f"the alias expands to more than {MAX_VARIANTS} forms; split it")
    return tuple(out)


def _split_words(text: str, *, exact: bool) -> list[tuple[str, bool]]:
    """Normalised words of an alias with their ``*`` (prefix) flag."""
    words: list[tuple[str, bool]] = []
    for chunk in text.split():
        star = chunk.endswith("*")
        body = chunk[:-1] if star else chunk
        if "*" in body:
            raise AliasError("'*' may only end a word (word* matches any word starting with 'word')")
        if star and exact:
            raise AliasError("an exact alias (=...) cannot also be a prefix (*)")
        toks = tokens(body)
        if star:
            if not toks or not body[-1:].isalnum():
                raise AliasError("'*' must follow a letter, as in 'северокоре*'")
            if len(toks[-1]) < MIN_PREFIX:
                raise AliasError(
                    f"the prefix {toks[-1]!r} is shorter than {MIN_PREFIX} letters: it would match too much"
                )
        words.extend((t, star and k == len(toks) - 1) for k, t in enumerate(toks))
    if not words:
        raise AliasError("the alias has no letters or digits")
    return words


def english_forms(word: str) -> tuple[str, ...]:
    """``word`` with its plural endings (the possessive ``'s`` is already a separate token)."""
    forms = [word, word + "s"]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        forms.append(word + "es")
    if len(word) > 2 and word.endswith("y") and word[-2] not in "aeiou":
        forms.append(word[:-1] + "ies")
    return tuple(forms)


# --- Russian ---------------------------------------------------------------------------------------


def _known(word: str) -> bool:
    return bool(analyzer().word_is_known(word))


def _pos_family(pos: str | None) -> frozenset[str] | None:
    if pos in _VERBISH:
        return _VERBISH
    if pos is None:
        return None
    return frozenset({pos})


def _lexeme(parse: Any) -> list[Any]:
    family = _pos_family(parse.tag.POS)
    return [f for f in parse.lexeme if family is None or f.tag.POS in family]


@lru_cache(maxsize=65_536)
def russian_word_forms(word: str) -> frozenset[Matcher]:
    """All forms of one Russian word; Snowball stem for a word pymorphy3 does not know."""
    if not _known(word):
        return frozenset({("s", stem(word))})
    parses = analyzer().parse(word)
    chosen = [p for p in parses if _fold(p.normal_form) == word] or parses[:1]
    forms = {word}
    for p in chosen:
        forms.update(_fold(f.word) for f in _lexeme(p))
    return frozenset(("e", f) for f in forms)


def _case(tag: Any) -> str | None:
    c = tag.case
    return _CASE_NORMAL.get(c, c) if c else None


def _nominative_parse(word: str, *, pos: frozenset[str], number: str | None, gender: str | None) -> Any:
    """Best parse of ``word`` in the nominative with the given POS, agreeing in number/gender."""
    if not _known(word):
        return None
    for p in analyzer().parse(word):
        tag = p.tag
        if tag.POS not in pos or tag.case != "nomn":
            continue
        if number and tag.number and tag.number != number:
            continue
        if gender and tag.number == "sing" and tag.gender in ("masc", "femn", "neut") and tag.gender != gender:
            continue
        return p
    return None


def _find_chain(words: Sequence[str]) -> list[tuple[int, Any]]:
    """The run of nominative words that decline together (see the module docstring)."""
    for i, w in enumerate(words):
        p = _nominative_parse(w, pos=frozenset({"NOUN"}) | _ADJ, number=None, gender=None)
        if p is None:
            continue
        chain = [(i, p)]
        number = p.tag.number
        gender = p.tag.gender if p.tag.gender in ("masc", "femn", "neut") else None
        has_noun = p.tag.POS == "NOUN"
        for j in range(i + 1, len(words)):
            allowed = frozenset({"NOUN"}) if has_noun else frozenset({"NOUN"}) | _ADJ
            q = _nominative_parse(words[j], pos=allowed, number=number, gender=gender)
            if q is None:
                break
            chain.append((j, q))
            has_noun = has_noun or q.tag.POS == "NOUN"
            number = number or q.tag.number
        return chain
    return []


def _forms_matching(parse: Any, case: str, number: str | None, gender: str | None, animacy: str | None) -> set[str]:
    out: set[str] = set()
    for f in _lexeme(parse):
        tag = f.tag
        if _case(tag) != case:
            continue
        if number and tag.number and tag.number != number:
            continue
        if gender and number == "sing" and tag.gender and tag.gender != gender:
            continue
        if animacy and case == "accs" and tag.animacy and tag.animacy != animacy:
            continue
        out.add(_fold(f.word))
    return out


@lru_cache(maxsize=16_384)
def _russian_rows(words: tuple[str, ...]) -> tuple[tuple[frozenset[Matcher], ...], ...]:
    """Alternative rows for a run of Russian words; each row is one agreement (case, number)."""
    if len(words) == 1:
        return ((russian_word_forms(words[0]),),)
    fixed = [frozenset({("e", w)}) if _known(w) else frozenset({("s", stem(w))}) for w in words]
    chain = _find_chain(words)
    if not chain:
        return (tuple(fixed),)
    nouns = [(i, p) for i, p in chain if p.tag.POS == "NOUN"]
    _, head = nouns[0] if nouns else chain[-1]
    head_gender = head.tag.gender if head.tag.gender in ("masc", "femn", "neut") else None
    numbers = {"sing"} if "Sgtm" in head.tag else {"plur"} if "Pltm" in head.tag else {"sing", "plur"}
    keys: set[tuple[str, str | None, str | None]] = set()
    if "Fixd" in head.tag:
        keys = {(c, "sing", head_gender) for c in _CASES}
    else:
        for f in _lexeme(head):
            case = _case(f.tag)
            if case in _CASES and (f.tag.number or "sing") in numbers:
                g = head_gender if nouns else f.tag.gender
                keys.add((case, f.tag.number, g))
    rows: list[tuple[frozenset[Matcher], ...]] = []
    for case, number, gender in sorted(keys, key=lambda k: (k[0], k[1] or "", k[2] or "")):
        row = list(fixed)
        for i, p in chain:
            written = words[i]
            if "Fixd" in p.tag:
                forms = {written}
            else:
                g = gender if p.tag.POS in _ADJ or not nouns else None
                forms = _forms_matching(p, case, number, g, head.tag.animacy)
                if len(nouns) > 1 and p.tag.POS == "NOUN":
                    forms.add(written)  # apposition: Ким Чен Ына, Виктором Горемыкиным
            row[i] = frozenset(("e", f) for f in (forms or {written}))
        rows.append(tuple(row))
    return tuple(dict.fromkeys(rows))

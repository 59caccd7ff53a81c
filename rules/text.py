"""Text normalisation and tokenisation, shared by rule aliases and item fields.

Both sides of a match go through the same functions, so an alias and the text it should find are
always compared in the same form:

* case: lowercase (``str.lower``); ``ё`` → ``е``;
* Unicode: NFKC for the rare characters where it changes a *word* (ligatures, full-width letters,
  decomposed ``й``, soft hyphens and zero-width characters inside words, ``İ``). Most fields contain none
  of them, and then the normalised text is just ``text.lower().replace("ё", "е")`` — same length, same
  offsets, two C-speed passes. Otherwise a slow path rebuilds the text token by token and keeps a map
  from every normalised character back to the original, so hits still point at the original text;
* tokens: maximal runs of letters and digits (``str.isalnum``). Everything else — spaces, every dash and
  hyphen, apostrophes, quotes, punctuation, ``_`` — separates tokens, so ``Kim Jong-un`` and
  ``Kim Jong Un`` give the same tokens and ``Russia's`` gives ``russia``, ``s``. Korean is kept as is:
  a Korean word with its particles (``북한의``) is one token.

The separators stay in the normalised text (only lowercased), so ``re:`` aliases can see hyphens and
sentence punctuation, and sentence splitting works on it too.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache
from typing import Literal, NamedTuple

TOKEN_RE = re.compile(r"[^\W_]+")
"""A token: a maximal run of characters for which ``str.isalnum()`` is true (``\\w`` minus ``_``)."""

Script = Literal["cyrillic", "latin", "hangul", "other"]

# Invisible characters that may sit inside a word in scraped text; removed, never separators.
_INVISIBLE = "\u00ad\u200b\u200c\u200d\u2060\ufeff"
# Tokens that are usually followed by "." without ending the sentence (checked cheaply, by set).
_ABBREVIATIONS = frozenset(
    {
        "г",
        "гг",
        "т",
        "тт",
        "д",
        "др",
        "пр",
        "см",
        "ср",
        "им",
        "ул",
        "стр",
        "тыс",
        "млн",
        "млрд",
        "трлн",
        "руб",
        "долл",
        "ок",
        "св",
        "кв",
        "пос",
        "обл",
        "mr",
        "mrs",
        "ms",
        "dr",
        "st",
        "jr",
        "sr",
        "no",
        "vs",
        "etc",
        "inc",
        "ltd",
        "co",
        "corp",
        "gen",
        "col",
        "lt",
        "sgt",
        "gov",
        "sen",
        "rep",
    }
)


@cache
def _odd_chars_re() -> re.Pattern[str]:
    """Characters that force the slow path: NFKC changes a word, invisible, combining, or case-length.

    Built once (about 20 ms) over the Basic Multilingual Plane; one character class with a bitmap,
    so searching it costs about 3 ns a character.
    """
    odd: list[int] = []
    for cp in range(0x10000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        if c in _INVISIBLE or unicodedata.category(c) in ("Mn", "Me") or len(c.lower()) != 1:
            odd.append(cp)
            continue
        n = unicodedata.normalize("NFKC", c)
        if n != c and (c.isalnum() or any(x.isalnum() for x in n)):
            odd.append(cp)
    ranges: list[list[int]] = []
    for cp in odd:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)
    return re.compile(f"[{body}]")


class NormText(NamedTuple):
    """A field's normalised text plus the way back to the original offsets.

    ``starts``/``ends`` are ``None`` when the normalised text has the same length as the original and
    every offset maps to itself (the fast path, by far the common case). A NamedTuple because one is
    built for every field of every item.
    """

    original: str
    text: str
    starts: tuple[int, ...] | None = None
    ends: tuple[int, ...] | None = None

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original ``[start, end)`` of the normalised ``[start, end)`` (end > start)."""
        if self.starts is None or self.ends is None:
            return start, end
        return self.starts[start], self.ends[end - 1]

    def surface(self, start: int, end: int) -> str:
        a, b = self.span(start, end)
        return self.original[a:b]


def normalize(text: str) -> NormText:
    """Normalise one field (see the module docstring)."""
    if not _odd_chars_re().search(text):
        return NormText(text, text.lower().replace("ё", "е"))
    return _normalize_slow(text)


_SLOW_TOKEN_RE = re.compile(
    r"(?:[^\W_]|[\u00ad\u200b-\u200d\u2060\ufeff\u0300-\u036f\u1ab0-\u1aff"
    r"\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f])+"
)


def _fold(s: str) -> str:
    return s.lower().replace("ё", "е")


@lru_cache(maxsize=4096)
def _separator(ch: str) -> str:
    """A separator character as the slow path writes it: one character, never alphanumeric (a few hundred
    distinct ones in real text, each normalised once per process)."""
    n = _fold(unicodedata.normalize("NFKC", ch))
    return n[0] if n and not n[0].isalnum() else " "


def _normalize_slow(text: str) -> NormText:
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def separators(a: int, b: int) -> None:
        out.extend(map(_separator, text[a:b]))
        starts.extend(range(a, b))
        ends.extend(range(a + 1, b + 1))

    pos = 0
    for m in _SLOW_TOKEN_RE.finditer(text):
        separators(pos, m.start())
        raw = m.group()
        norm = _fold(unicodedata.normalize("NFKC", raw))
        norm = "".join(
            c if c.isalnum() else " "
            for c in norm
            if c not in _INVISIBLE and unicodedata.category(c) not in ("Mn", "Me")
        )
        if not norm.strip():
            norm = " " * len(raw)
        a, b = m.span()
        if len(norm) == len(raw):
            starts.extend(range(a, b))
            ends.extend(range(a + 1, b + 1))
        else:  # the token changed length: every character of it maps to the whole original token
            starts.extend([a] * len(norm))
            ends.extend([b] * len(norm))
        out.append(norm)
        pos = b
    separators(pos, len(text))
    return NormText(text, "".join(out), tuple(starts), tuple(ends))


def tokens(text: str) -> list[str]:
    """Normalised tokens of ``text`` (used for aliases)."""
    return TOKEN_RE.findall(normalize(text).text)


def script_of(token: str) -> Script:
    """Writing system of a normalised token; mixed letters/digits count as ``other``."""
    if not token.isalpha():
        return "other"
    first = token[0]
    if "\u0400" <= first <= "\u04ff":
        kind: Script = "cyrillic"
    elif "\uac00" <= first <= "\ud7a3" or "\u1100" <= first <= "\u11ff" or "\u3130" <= first <= "\u318f":
        kind = "hangul"
    elif first.isascii() or "\u00c0" <= first <= "\u024f":
        kind = "latin"
    else:
        return "other"
    return kind if all(script_of_char(c) == kind for c in token) else "other"


def script_of_char(c: str) -> Script:
    if "\u0400" <= c <= "\u04ff":
        return "cyrillic"
    if "\uac00" <= c <= "\ud7a3" or "\u1100" <= c <= "\u11ff" or "\u3130" <= c <= "\u318f":
        return "hangul"
    if c.isascii() or "\u00c0" <= c <= "\u024f":
        return "latin"
    return "other"


_BREAK_CHARS = ".!?…;\n\r\u2029\u3002\uff01\uff1f\uff1b"


def word_counts(text: str, positions: Iterable[int]) -> dict[int, int]:
    """For each offset ``p``, how many words start before it (in ``text[:p]``).

    A *word* here is what a reader counts: a run of non-space characters, so ``военно-техническое``
    is one word and ``Kim Jong-un`` two. One pass over the text for all offsets (``str.split`` on the
    stretches between them, in C) — proximity is checked only for items that already have the groups.
    """
    out: dict[int, int] = {}
    count = 0
    prev = 0
    for pos in sorted(set(positions)):
        if pos > prev:
            count += len(text[prev:pos].split())
            if 0 < prev < len(text) and not text[prev - 1].isspace() and not text[prev].isspace():
                count -= 1  # that word started before ``prev`` and was counted already
        out[pos] = count
        prev = max(prev, pos)
    return out


def sentence_starts(norm: NormText) -> list[int]:
    """Offsets (in the normalised text) where a new sentence starts, ascending.

    Sentences end at ``! ? … ;``, line breaks, ``...``, and ``.`` (a semicolon separates the items of a
    headline list as surely as a full stop) — except after a one-letter word
    (initials, ``г.``), a known abbreviation (``тыс.``, ``Mr.``), between digits (``5.5``), or when the
    next word starts in lowercase in the original text. Cheap heuristics, good enough for "in the same
    sentence"; only the break characters are visited (found with ``str.find``).
    """
    return _breaks(norm, 0, len(norm.text))


def has_sentence_break(norm: NormText, start: int, end: int) -> bool:
    """Whether a sentence ends between ``start`` and ``end`` (same rules as :func:`sentence_starts`)."""
    if start >= end:
        return False
    gap = norm.text[start:end]
    for ch in _BREAK_CHARS:
        if ch in gap:
            return bool(_breaks(norm, start, end))
    return False


def _breaks(norm: NormText, lo: int, hi: int) -> list[int]:
    text = norm.text
    marks: list[int] = []
    for ch in _BREAK_CHARS:
        i = text.find(ch, lo, hi)
        while i >= 0:
            marks.append(i)
            i = text.find(ch, i + 1, hi)
    if not marks:
        return []
    marks.sort()
    out: list[int] = []
    n = len(text)
    for k, i in enumerate(marks):
        if (k + 1 < len(marks) and marks[k + 1] == i + 1) or (i + 1 < n and text[i + 1] in _BREAK_CHARS):
            continue  # a run such as "?!" or "...": judged at its last character
        run_start = i
        while run_start > 0 and text[run_start - 1] in _BREAK_CHARS:
            run_start -= 1
        if text[run_start : i + 1] == "." and not _ends_sentence_at_dot(norm, run_start, i + 1, n):
            continue
        out.append(i + 1)
    return out


def _ends_sentence_at_dot(norm: NormText, a: int, b: int, n: int) -> bool:
    text = norm.text
    j = a
    while j > 0 and text[j - 1].isalnum():
        j -= 1
    word = text[j:a]
    if (len(word) == 1 and word.isalpha()) or word in _ABBREVIATIONS:
        return False
    k = b
    while k < n and not text[k].isalnum():
        k += 1
    if k == n:
        return True
    if word.isdigit() and k == b and text[k].isdigit():
        return False  # 5.5
    start, _ = norm.span(k, k + 1)
    return not norm.original[start].islower()

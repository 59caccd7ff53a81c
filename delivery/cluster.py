"""Grouping the same story told by several outlets into one digest entry.

Same language: titles are normalised (lowercase, ё→е, punctuation dropped, Snowball-stemmed for ru/en)
and compared with rapidfuzz ``token_set_ratio``; a pair merges at ≥ ``SAME_LANGUAGE_THRESHOLD`` when the
two items' matched groups mostly agree (Jaccard ≥ 0.5) and their titles' numbers, if both have any, share
one. Across languages no string measure works, so a pair merges
only when the matched groups are the same, they share a distinctive token (a number such as 5,000 or a
Latin acronym such as NIS) and were published within 36 hours. Wrong merges hide a story; missed merges
only repeat it — so the rules lean to not merging. Union-find makes grouping transitive.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

import Stemmer
from rapidfuzz import fuzz

from core.models import Item, Match

SAME_LANGUAGE_THRESHOLD = 60
GROUP_OVERLAP = 0.5  # Jaccard overlap of the matched groups
CROSS_LANGUAGE_WINDOW = timedelta(hours=36)
_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d[\d.,]*\d|\d")
_DISTINCT = re.compile(r"\b(?:\d[\d.,]*\d|\d{2,}|[A-Z]{2,6})\b")


@dataclass(frozen=True, slots=True)
class Entry:
    item: Item
    matches: tuple[Match, ...]


@dataclass(frozen=True, slots=True)
class Cluster:
    """One story: the representative item (the earliest published) and every report of it."""

    members: tuple[Entry, ...]

    @property
    def lead(self) -> Entry:
        return self.members[0]

    @property
    def rules(self) -> tuple[str, ...]:
        out: list[str] = []
        for e in self.members:
            out.extend(m.rule for m in e.matches if m.rule not in out)
        return tuple(out)

    @property
    def newest(self) -> datetime:
        return max(_when(e.item) for e in self.members)


def _when(item: Item) -> datetime:
    return item.published or datetime.min.replace(tzinfo=UTC)


@cache
def _stemmer(lang: str) -> Stemmer.Stemmer | None:
    name = {"ru": "russian", "en": "english"}.get(lang)
    return Stemmer.Stemmer(name) if name else None


def title_key(item: Item, spans: Sequence[tuple[int, int]] = ()) -> str:
    """The title's content words, stemmed; ``spans`` (the matched aliases) are left out, because every
    item in a digest mentions the DPRK and Russia and those words would make every pair look alike."""
    title = item.title
    for start, end in sorted(spans, reverse=True):
        title = title[:start] + " " + title[end:]
    words = _WORD.findall(title.lower().replace("ё", "е"))
    stemmer = _stemmer(item.lang or "")
    if stemmer is not None:
        words = stemmer.stemWords(words)
    return " ".join(words)


@dataclass(frozen=True, slots=True)
class _Features:
    """What a comparison needs, computed once per entry (a digest compares every pair)."""

    lang: str | None
    key: str
    groups: frozenset[str]
    numbers: frozenset[str]
    distinct: frozenset[str]
    when: datetime


def _features(entry: Entry) -> _Features:
    item = entry.item
    distinct = frozenset(t.replace(",", "").replace(".", "") for t in _DISTINCT.findall(f"{item.title} {item.summary}"))
    numbers = frozenset(t.replace(",", "").replace(".", "") for t in _NUMBER.findall(item.title))
    spans = [(h.start, h.end) for m in entry.matches for h in m.hits if h.field == "title"]
    return _Features(
        item.lang,
        title_key(item, spans),
        frozenset(h.group for m in entry.matches for h in m.hits),
        numbers,
        distinct,
        _when(item),
    )


def _same(a: _Features, b: _Features) -> bool:
    if a.lang == b.lang:
        if a.numbers and b.numbers and not (a.numbers & b.numbers):
            return False  # "5,000 builders" and "6,000 sappers" are different reports
        union = a.groups | b.groups
        if not union or len(a.groups & b.groups) / len(union) < GROUP_OVERLAP:
            return False  # "Russia and China drills" is not "Russia and North Korea drills"
        if not (a.key and b.key):
            return a.key == b.key and bool(a.numbers & b.numbers)
        return fuzz.token_set_ratio(a.key, b.key) >= SAME_LANGUAGE_THRESHOLD
    if a.groups != b.groups or abs(a.when - b.when) > CROSS_LANGUAGE_WINDOW:
        return False
    return bool(a.distinct & b.distinct)


def same_story(a: Entry, b: Entry) -> bool:
    return _same(_features(a), _features(b))


def cluster(entries: Sequence[Entry]) -> list[Cluster]:
    """Clusters in order of their earliest member; members earliest first."""
    parent = list(range(len(entries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    features = [_features(e) for e in entries]
    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            if find(i) != find(j) and _same(features[i], features[j]):
                parent[find(j)] = find(i)
    groups: dict[int, list[Entry]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(find(i), []).append(entry)
    clusters = [Cluster(tuple(sorted(g, key=lambda e: _when(e.item)))) for g in groups.values()]
    return sorted(clusters, key=lambda c: _when(c.lead.item))

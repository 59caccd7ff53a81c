"""Grouping the same story told by several outlets into one digest entry.

Same language: titles are normalised (lowercase, ё→е, punctuation dropped, Snowball-stemmed for ru/en)
and compared with rapidfuzz ``token_set_ratio``; a pair merges at ≥ ``SAME_LANGUAGE_THRESHOLD`` when the
two items also share a matched entity group. Across languages no string measure works, so a pair merges
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
CROSS_LANGUAGE_WINDOW = timedelta(hours=36)
_WORD = re.compile(r"[^\W_]+")
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


def title_key(item: Item) -> str:
    words = _WORD.findall(item.title.lower().replace("ё", "е"))
    stemmer = _stemmer(item.lang or "")
    if stemmer is not None:
        words = stemmer.stemWords(words)
    return " ".join(words)


def _groups(entry: Entry) -> frozenset[str]:
    return frozenset(h.group for m in entry.matches for h in m.hits)


def _distinct(item: Item) -> frozenset[str]:
    return frozenset(t.replace(",", "").replace(".", "") for t in _DISTINCT.findall(f"{item.title} {item.summary}"))


def same_story(a: Entry, b: Entry) -> bool:
    if a.item.lang == b.item.lang:
        if not (_groups(a) & _groups(b)):
            return False
        return fuzz.token_set_ratio(title_key(a.item), title_key(b.item)) >= SAME_LANGUAGE_THRESHOLD
    if _groups(a) != _groups(b):
        return False
    if abs(_when(a.item) - _when(b.item)) > CROSS_LANGUAGE_WINDOW:
        return False
    return bool(_distinct(a.item) & _distinct(b.item))


def cluster(entries: Sequence[Entry]) -> list[Cluster]:
    """Clusters in order of their earliest member; members earliest first."""
    parent = list(range(len(entries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            if find(i) != find(j) and same_story(entries[i], entries[j]):
                parent[find(j)] = find(i)
    groups: dict[int, list[Entry]] = {}
    for i, entry in enumerate(entries):
        groups.setdefault(find(i), []).append(entry)
    clusters = [Cluster(tuple(sorted(g, key=lambda e: _when(e.item)))) for g in groups.values()]
    return sorted(clusters, key=lambda c: _when(c.lead.item))

"""Story benchmark: clustering 500 / 2,000 / 5,000 matches, and the sentence encoder's cost.

    python bench/cluster.py [--sizes 500,2000,5000] [--baseline-max 5000]

Prints, in one run:
- clustering time for each size: the previous all-pairs function (the baseline, copied below as it was
  before issue 11) beside the bucketed :func:`delivery.cluster.cluster` (same entries, same machine);
- the encoder: load time and resident memory added by loading it, milliseconds per matched item embedded
  alone and in a batch of 50 (the pipeline embeds each feed's matched items as one batch).

Entries are synthetic but shaped like a busy day: stories of 1–8 reports (ru/en/ko, the texts of
tests/data/clusters.jsonl with a figure of their own per story), spread over 24 hours, with the real
encoder's vectors of those texts plus noise.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import psutil
import Stemmer
from rapidfuzz import fuzz

from core.models import Hit, Item, Match
from delivery.cluster import Entry, cluster
from delivery.encoder import LazyEncoder, story_text

REPO = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)


# -- the baseline: delivery/cluster.py's all-pairs clustering as it was before issue 11 ------------------

_WORD = re.compile(r"[^\W_]+")
_NUMBER = re.compile(r"\d[\d.,]*\d|\d")
_DISTINCT = re.compile(r"\b(?:\d[\d.,]*\d|\d{2,}|[A-Z]{2,6})\b")


@cache
def _stemmer(lang: str) -> Stemmer.Stemmer | None:
    name = {"ru": "russian", "en": "english"}.get(lang)
    return Stemmer.Stemmer(name) if name else None


@dataclass(frozen=True, slots=True)
class _Old:
    lang: str | None
    key: str
    groups: frozenset[str]
    numbers: frozenset[str]
    distinct: frozenset[str]
    when: datetime


def _old_features(entry: Entry) -> _Old:
    item = entry.item
    title = item.title
    for start, end in sorted(
        [(h.start, h.end) for m in entry.matches for h in m.hits if h.field == "title"], reverse=True
    ):
        title = title[:start] + " " + title[end:]
    words = _WORD.findall(title.lower().replace("ё", "е"))
    stemmer = _stemmer(item.lang or "")
    if stemmer is not None:
        words = stemmer.stemWords(words)
    both = f"{item.title} {item.summary}"
    return _Old(
        item.lang,
        " ".join(words),
        frozenset(h.group for m in entry.matches for h in m.hits),
        frozenset(t.replace(",", "").replace(".", "") for t in _NUMBER.findall(item.title)),
        frozenset(t.replace(",", "").replace(".", "") for t in _DISTINCT.findall(both)),
        item.published or T0,
    )


def _old_same(a: _Old, b: _Old) -> bool:
    if a.lang == b.lang:
        if a.numbers and b.numbers and not (a.numbers & b.numbers):
            return False
        union = a.groups | b.groups
        if not union or len(a.groups & b.groups) / len(union) < 0.5:
            return False
        if not (a.key and b.key):
            return a.key == b.key and bool(a.numbers & b.numbers)
        return fuzz.token_set_ratio(a.key, b.key) >= 60
    if a.groups != b.groups or abs(a.when - b.when) > timedelta(hours=36):
        return False
    return bool(a.distinct & b.distinct)


def quadratic_cluster(entries: Sequence[Entry]) -> int:
    """The old function: every pair compared; returns the number of clusters."""
    parent = list(range(len(entries)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    features = [_old_features(e) for e in entries]
    for i in range(len(entries)):
        for j in range(i + 1, len(entries)):
            if find(i) != find(j) and _old_same(features[i], features[j]):
                parent[find(j)] = find(i)
    return len({find(i) for i in range(len(entries))})


# -- data ------------------------------------------------------------------------------------------------


def synthetic(rows: list[dict[str, str]], vectors: np.ndarray, size: int, seed: int = 7) -> list[Entry]:
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    by_story: dict[str, list[int]] = {}
    for n, row in enumerate(rows):
        by_story.setdefault(row["story"], []).append(n)
    stories = list(by_story.values())
    hits = (
        Hit("DPRK", "title", 0, 0, "DPRK"),
        Hit("RUSSIA", "title", 0, 0, "Russia"),
        Hit("MILITARY", "title", 0, 0, "m"),
    )
    out: list[Entry] = []
    story = 0
    while len(out) < size:
        story += 1
        members = rng.choice(stories)
        start = T0 + timedelta(minutes=rng.randrange(24 * 60))
        figure = 100 + story  # a figure of its own: different synthetic stories never merge by accident
        for k in range(min(rng.randint(1, 8), size - len(out))):
            position = rng.choice(members)
            row = rows[position]
            jitter = np.asarray(noise.normal(0, 0.02, vectors.shape[1]), dtype=np.float32)
            vector = vectors[position] + jitter
            item = Item(
                f"https://outlet{k}.example/rss",
                f"{story}-{k}",
                f"{row['title']} ({figure})",
                row["summary"],
                None,
                start + timedelta(minutes=rng.randrange(180)),
                row["lang"],
                f"Outlet {k}",
            )
            out.append(Entry(item, (Match("r", "instant", hits),), vector=vector / np.linalg.norm(vector)))
    return out


def rss_mib() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="500,2000,5000")
    parser.add_argument("--baseline-max", type=int, default=5000, help="skip the all-pairs baseline above this")
    args = parser.parse_args()
    rows = [json.loads(line) for line in (REPO / "tests" / "data" / "clusters.jsonl").read_text().splitlines()]
    texts = [story_text(r["title"], r["summary"]) for r in rows]

    before = rss_mib()
    encoder = LazyEncoder()
    started = time.perf_counter()
    vectors = encoder.embed(texts[:1])
    load = time.perf_counter() - started
    loaded = rss_mib()
    assert vectors is not None, "the encoder did not load"
    started = time.perf_counter()
    for text in texts[:20]:
        encoder.embed([text])
    single = (time.perf_counter() - started) / 20 * 1000
    batch = texts[:50]
    started = time.perf_counter()
    encoder.embed(batch)
    batched = (time.perf_counter() - started) / len(batch) * 1000
    print(f"encoder: load {load:.2f} s, +{loaded - before:.0f} MiB RSS ({loaded:.0f} MiB after loading)")
    print(f"encoder: {single:.1f} ms per matched item alone, {batched:.1f} ms per item in a batch of {len(batch)}")
    all_vectors = encoder.embed(texts)
    assert all_vectors is not None

    # wall seconds, and CPU seconds of this process (the machine may be shared: CPU time is what it costs)
    print(f"{'matches':>8} {'all pairs (before)':>24} {'buckets (after)':>24} {'stories: made, before/after':>28}")
    for size in (int(s) for s in args.sizes.split(",")):
        entries = synthetic(rows, all_vectors, size)
        if size <= args.baseline_max:
            wall, cpu = time.perf_counter(), time.process_time()
            old_count = str(quadratic_cluster(entries))
            old = f"{time.perf_counter() - wall:.2f} s ({time.process_time() - cpu:.2f} cpu)"
        else:
            old, old_count = "skipped", "-"
        wall, cpu = time.perf_counter(), time.process_time()
        clusters = cluster(entries)
        new = f"{time.perf_counter() - wall:.2f} s ({time.process_time() - cpu:.2f} cpu)"
        made = len({e.item.uid.split("-")[0] for e in entries})  # the synthetic stories, the truth
        print(f"{size:>8} {old:>24} {new:>24} {f'{made}, {old_count} / {len(clusters)}':>28}")
    print(f"load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
